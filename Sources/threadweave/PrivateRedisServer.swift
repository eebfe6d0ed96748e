import Foundation
import Logging
import RedisClient

/// The `redis-server` child `serve` starts when no Redis URL is given: a free
/// port on the loopback interface, AOF on, data under `.threadweave/redis`.
/// Only this child is ever signalled, by its pid.
struct PrivateRedisServer {
    let port: Int
    private let process: Process
    private let logger: Logger

    var url: String { "redis://127.0.0.1:\(port)" }

    /// Starts the server, drawing another port when the one drawn is taken,
    /// and returns once it answers PING.
    static func start(directory: URL, logger: Logger) async throws -> PrivateRedisServer {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let executable = try executableURL()
        for _ in 0..<10 {
            let port = Int.random(in: 20_000...60_000)
            let process = Process()
            process.executableURL = executable
            process.arguments = [
                "--port", String(port), "--bind", "127.0.0.1", "--dir", directory.path,
                "--appendonly", "yes", "--save", "", "--daemonize", "no",
                "--logfile", directory.appendingPathComponent("redis.log").path,
            ]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try withSignalsUnblocked { try process.run() }
            let server = PrivateRedisServer(port: port, process: process, logger: logger)
            if try await server.waitUntilAnswering() {
                logger.info("started redis-server", metadata: ["pid": "\(process.processIdentifier)", "port": "\(port)", "dir": "\(directory.path)"])
                return server
            }
            await server.stop()
        }
        throw PrivateRedisError("could not start redis-server on a free loopback port (see \(directory.path)/redis.log)")
    }

    /// SIGTERM to the child (Redis flushes the AOF and exits), then waits for it.
    func stop() async {
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<200 where process.isRunning {
            try? await Task.sleep(for: .milliseconds(50))
        }
        logger.info("stopped redis-server", metadata: ["pid": "\(process.processIdentifier)"])
    }

    /// True once PING is answered; false when the child exits first (its port was taken) or stays silent.
    private func waitUntilAnswering() async throws -> Bool {
        let configuration = RedisConfiguration(
            endpoint: .tcp(host: "127.0.0.1", port: port), connectTimeout: .milliseconds(500),
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

    /// The child inherits the calling thread's signal mask, and the threads of
    /// the cooperative pool block SIGTERM: unblocked, Redis can be stopped by it.
    private static func withSignalsUnblocked(_ body: () throws -> Void) rethrows {
        var none = sigset_t()
        var previous = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try body()
    }

    private static func executableURL() throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let candidates = path.split(separator: ":").map { "\($0)/redis-server" } + ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        guard let found = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw PrivateRedisError("redis-server is not installed (or not on PATH); install it or pass --redis-url")
        }
        return URL(fileURLWithPath: found)
    }
}

struct PrivateRedisError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
