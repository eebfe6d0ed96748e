import Foundation
import LocalRedis
import Logging

/// The `redis-server` child `serve` starts when no Redis URL is given, with AOF
/// on and its data under `.threadweave/redis`, reachable by this user only:
///
/// - it listens on a unix socket in the data directory (mode 0700, files
///   created under umask 077), not on a TCP port other local users could reach;
/// - it stops with `serve`, even when `serve` is SIGKILLed (`withLocalRedisServer`
///   runs it under a supervisor that stops it when its parent is gone);
/// - the data directory is locked (`flock` on `serve.lock`), and the lock's
///   file is the server processes' stdout, so it is held until the last of
///   them has exited: a second `serve` on the same directory is refused rather
///   than starting a second server on the same AOF.
///
/// Starting, readiness and stopping by pid are `withLocalRedisServer`'s.
enum PrivateRedisServer {
    /// Runs `body` with the server's URL; the server is stopped (SIGTERM: it flushes the AOF) before this returns.
    static func with<Result>(
        directory: URL, logger: Logger, _ body: (_ url: String) async throws -> Result
    ) async throws -> Result {
        let fileManager = FileManager.default
        try fileManager.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        // An existing directory keeps its mode unless told: make it private too.
        try fileManager.setAttributes([.posixPermissions: 0o700], ofItemAtPath: directory.path)
        let lock = try lockDataDirectory(directory)
        defer { try? lock.close() }
        let socketPath = directory.appendingPathComponent("redis.sock").standardizedFileURL.path
        // sockaddr_un holds 108 bytes, the terminating NUL included.
        guard socketPath.utf8.count < 108 else {
            throw PrivateRedisError("the socket path \(socketPath) is too long for a unix socket; use a shorter --data-dir")
        }
        return try await withLocalRedisServer(
            directory: directory, listener: .unixSocket(path: socketPath),
            // `always`: a command is acknowledged only once its events are on disk (see docs/RELIABILITY.md).
            arguments: ["--appendonly", "yes", "--appendfsync", "always"], standardOutput: lock.fileDescriptor,
            logger: logger
        ) { server in try await body(server.url) }
    }

    /// An exclusive `flock` on `<directory>/serve.lock`, or an error naming the directory.
    private static func lockDataDirectory(_ directory: URL) throws -> FileHandle {
        let path = directory.appendingPathComponent("serve.lock").path
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw PrivateRedisError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw PrivateRedisError(
                "\(directory.path) is in use by another serve (or its redis-server is still stopping); "
                    + "stop it first, or pass another --data-dir")
        }
        return FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
    }
}

struct PrivateRedisError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
