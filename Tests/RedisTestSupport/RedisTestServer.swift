public import Foundation

/// A private `redis-server` child for tests that need a server of their own
/// (restart, shutdown, failover). It listens on a random free port on the
/// loopback interface, keeps its data in a fresh temporary directory, and is
/// stopped by `stop()` — only this process's own child is ever signalled.
public final class RedisTestServer: @unchecked Sendable {
    public let port: Int
    public let directory: URL
    public var url: String { "redis://127.0.0.1:\(port)" }
    private let lock = NSLock()
    private var process: Process?
    private let extraArguments: [String]

    /// Starts a server, retrying on another port when the one drawn is taken.
    /// Waits with async sleeps: tests run on the cooperative pool, which a
    /// blocking wait would starve (and with it every NIO future's resumption).
    public static func start(arguments: [String] = []) async throws -> RedisTestServer {
        var lastError: (any Error)?
        for _ in 0..<20 {
            let server = try RedisTestServer(port: Int.random(in: 20_000...60_000), arguments: arguments)
            do {
                try await server.launch()
                return server
            } catch {
                server.destroy()
                lastError = error
            }
        }
        throw lastError ?? RedisTestServerError(message: "could not start redis-server")
    }

    private init(port: Int, arguments: [String]) throws {
        self.port = port
        self.extraArguments = arguments
        self.directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("threadweave-test-redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// Starts the server again on the same port and data directory (after `stop()`).
    public func restart() async throws {
        try await launch()
    }

    /// Stops the server (SIGKILL to our own child) and waits for it to exit.
    /// Not SIGTERM: a child spawned from a Swift-concurrency (libdispatch) thread
    /// inherits that thread's blocked-signal mask, so SIGTERM is never delivered
    /// and `waitUntilExit()` would hang. The server keeps no data worth a clean exit.
    public func stop() {
        lock.lock()
        let running = process
        process = nil
        lock.unlock()
        guard let running, running.isRunning else { return }
        kill(running.processIdentifier, SIGKILL)
        running.waitUntilExit()
    }

    /// Stops the server and removes its data directory.
    public func destroy() {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit {
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    private func launch() async throws {
        let logFile = directory.appendingPathComponent("redis.log")
        try? FileManager.default.removeItem(at: logFile)
        let child = Process()
        child.executableURL = URL(fileURLWithPath: Self.redisServerPath())
        child.arguments = [
            "--port", String(port), "--bind", "127.0.0.1",
            "--dir", directory.path, "--logfile", logFile.path,
            "--save", "", "--appendonly", "no", "--daemonize", "no",
        ] + extraArguments
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if !child.isRunning {
                throw RedisTestServerError(message: "redis-server exited on port \(port)")
            }
            if let log = try? String(contentsOf: logFile, encoding: .utf8),
                log.contains("Ready to accept connections")
            {
                lock.withLock { process = child }
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        throw RedisTestServerError(message: "redis-server did not become ready on port \(port)")
    }

    static func redisServerPath() -> String {
        for candidate in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return "/usr/bin/redis-server"
    }
}

public struct RedisTestServerError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The server shared by a test run: the one `make test` (through
/// `scripts/with-redis.sh`) started and named in `$TEST_REDIS_URL`. Tests
/// isolate themselves with `uniqueNamespace()`, never with FLUSHALL.
public enum TestRedis {
    public static var url: String {
        guard let url = ProcessInfo.processInfo.environment["TEST_REDIS_URL"], !url.isEmpty else {
            fatalError("TEST_REDIS_URL is unset: run the tests with `make test` or `scripts/with-redis.sh swift test`")
        }
        return url
    }

    /// A fresh key namespace, so concurrent tests never see each other's keys.
    public static func uniqueNamespace(_ prefix: String = "t") -> String {
        "\(prefix)\(UInt64.random(in: 0...UInt64.max) % 1_000_000_000_000)"
    }
}
