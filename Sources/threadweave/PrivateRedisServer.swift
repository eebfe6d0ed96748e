import Foundation
import LocalRedis
import Logging

/// The `redis-server` child `serve` starts when no Redis URL is given, with AOF
/// on and its data under `.threadweave/redis`, reachable by this user only:
///
/// - it listens on a unix socket in the data directory (mode 0700, files
///   created under umask 077), not on a TCP port other local users could reach;
/// - it runs under a small bash watchdog whose stdin is a pipe `serve` holds:
///   when `serve` dies, even by SIGKILL, the pipe closes and the watchdog stops
///   Redis (SIGTERM, so the AOF is flushed);
/// - the data directory is locked (`flock` on `serve.lock`), and the lock's
///   file is the watchdog's and Redis's stdout, so it is held until the last of
///   them has exited: a second `serve` on the same directory is refused rather
///   than starting a second server on the same AOF.
///
/// Starting, readiness and stopping by pid are `LocalRedisServer`'s.
struct PrivateRedisServer {
    private let server: LocalRedisServer
    /// The write end of the watchdog's stdin: closing it (or dying) stops Redis.
    private let lifeline: Pipe

    var url: String { server.url }

    /// Stops Redis when the parent is gone (stdin at EOF) or on SIGTERM/SIGINT.
    private static let watchdog = """
        server="$1"; shift
        "$server" "$@" & redis=$!
        trap 'kill -TERM "$redis" 2>/dev/null' TERM INT
        while read -r _; do :; done
        kill -TERM "$redis" 2>/dev/null
        wait "$redis"
        """

    /// Starts the server and returns once it answers PING.
    static func start(directory: URL, logger: Logger) async throws -> PrivateRedisServer {
        let fileManager = FileManager.default
        try fileManager.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        // An existing directory keeps its mode unless told: make it private too.
        try fileManager.setAttributes([.posixPermissions: 0o700], ofItemAtPath: directory.path)
        let lock = try lockDataDirectory(directory)
        // The children hold the lock through their stdout; ours may go.
        defer { try? lock.close() }
        let socketPath = directory.appendingPathComponent("redis.sock").standardizedFileURL.path
        // sockaddr_un holds 108 bytes, the terminating NUL included.
        guard socketPath.utf8.count < 108 else {
            throw PrivateRedisError("the socket path \(socketPath) is too long for a unix socket; use a shorter --data-dir")
        }

        let lifeline = Pipe()
        let wrapper = RedisWrapper(
            command: ["/bin/bash", "-c", watchdog, "redis-watchdog"], standardInput: lifeline, standardOutput: lock)
        do {
            let server = try await LocalRedisServer.start(
                directory: directory, listener: .unixSocket(path: socketPath),
                // `always`: a command is acknowledged only once its events are on disk (see docs/RELIABILITY.md).
                arguments: ["--appendonly", "yes", "--appendfsync", "always"], wrapper: wrapper, logger: logger)
            return PrivateRedisServer(server: server, lifeline: lifeline)
        } catch {
            try? lifeline.fileHandleForWriting.close()
            throw error
        }
    }

    /// Stops Redis (SIGTERM: it flushes the AOF and exits) and waits for it.
    func stop() async {
        try? lifeline.fileHandleForWriting.close()
        await server.stop()
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
