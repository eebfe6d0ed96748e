import Foundation

/// A loopback port the kernel hands out now. It may be taken again before
/// the child binds it: `LocalRedisServer` then tries another.
public func freeLoopbackPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw LocalRedisError("socket() failed: \(String(cString: strerror(errno)))") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
            bind(descriptor, generic, length) == 0 && getsockname(descriptor, generic, &length) == 0
        }
    }
    guard bound else { throw LocalRedisError("could not bind a loopback port: \(String(cString: strerror(errno)))") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// The first `redis-server` on PATH, else in the usual places.
func redisServerPath() throws -> String {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    let candidates =
        path.split(separator: ":").map { "\($0)/redis-server" } + ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
    guard let found = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) else {
        throw LocalRedisError("redis-server is not installed (or not on PATH)")
    }
    return found
}
