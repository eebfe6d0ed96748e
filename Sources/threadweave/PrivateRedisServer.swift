import Foundation
import Logging
import RedisClient

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
/// Only this child is ever signalled, by its pid.
struct PrivateRedisServer {
    let socketPath: String
    private let process: Process
    /// The write end of the watchdog's stdin: closing it (or dying) stops Redis.
    private let lifeline: Pipe
    private let logger: Logger

    var url: String { "unix://\(socketPath)" }

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
        let socketPath = directory.appendingPathComponent("redis.sock").standardizedFileURL.path
        // sockaddr_un holds 108 bytes, the terminating NUL included.
        guard socketPath.utf8.count < 108 else {
            throw PrivateRedisError("the socket path \(socketPath) is too long for a unix socket; use a shorter --data-dir")
        }

        let lifeline = Pipe()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [
            "-c", watchdog, "redis-watchdog", try redisServerPath(),
            "--port", "0", "--unixsocket", socketPath, "--unixsocketperm", "700", "--dir", directory.path,
            // `always`: a command is acknowledged only once its events are on disk (see docs/RELIABILITY.md).
            "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
            "--logfile", directory.appendingPathComponent("redis.log").path,
        ]
        process.standardInput = lifeline
        process.standardOutput = lock
        process.standardError = FileHandle.nullDevice
        try withChildDefaults { try process.run() }
        // The children hold the lock through their stdout; ours may go.
        try? lock.close()
        let server = PrivateRedisServer(socketPath: socketPath, process: process, lifeline: lifeline, logger: logger)
        guard try await server.waitUntilAnswering() else {
            await server.stop()
            throw PrivateRedisError("redis-server did not start (see \(directory.path)/redis.log)")
        }
        logger.info(
            "started redis-server",
            metadata: ["pid": "\(process.processIdentifier)", "socket": "\(socketPath)", "dir": "\(directory.path)"])
        return server
    }

    /// Stops Redis (SIGTERM: it flushes the AOF and exits) and waits for it.
    func stop() async {
        try? lifeline.fileHandleForWriting.close()
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<200 where process.isRunning {
            try? await Task.sleep(for: .milliseconds(50))
        }
        logger.info("stopped redis-server", metadata: ["pid": "\(process.processIdentifier)"])
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

    /// True once PING is answered; false when the child exits first or stays silent.
    private func waitUntilAnswering() async throws -> Bool {
        let configuration = RedisConfiguration(
            endpoint: .unixSocket(path: socketPath), connectTimeout: .milliseconds(500),
            commandTimeout: .milliseconds(500), maximumConnections: 1)
        return try await withRedisPool(configuration, logger: logger) { pool in
            for _ in 0..<200 {
                guard process.isRunning else { return false }
                if (try? await pool.send(RedisCommand("PING"))) != nil { return true }
                try await Task.sleep(for: .milliseconds(50))
            }
            return false
        }
    }

    private static func redisServerPath() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let candidates = path.split(separator: ":").map { "\($0)/redis-server" } + ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        guard let found = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw PrivateRedisError("redis-server is not installed (or not on PATH); install it or pass --redis-url")
        }
        return found
    }

    /// The child inherits the calling thread's signal mask, and the threads of
    /// the cooperative pool block SIGTERM: unblocked, Redis can be stopped by
    /// it. The umask makes every file Redis writes (AOF, log) private.
    private static func withChildDefaults(_ body: () throws -> Void) rethrows {
        var none = sigset_t()
        var previous = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &previous)
        let previousMask = umask(0o077)
        defer {
            umask(previousMask)
            pthread_sigmask(SIG_SETMASK, &previous, nil)
        }
        try body()
    }
}

struct PrivateRedisError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
