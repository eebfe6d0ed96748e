public import Foundation
public import Logging
import NIOPosix
public import RedisClient

/// A private `redis-server` child: its own data directory, a free loopback
/// port or a unix socket, extra configuration arguments. Used by `threadweave
/// serve` (through a watchdog wrapper) and by the tests' `RedisTestServer`.
///
/// Only this child is ever signalled, by its pid. Long waits are async sleeps
/// (a blocking wait on the cooperative pool would starve it); only `kill()`
/// waits in place, for the exit SIGKILL makes immediate.
public final class LocalRedisServer: @unchecked Sendable {
    public enum Listener: Sendable, Hashable {
        /// A loopback TCP port the kernel hands out at start (another one if it is taken meanwhile).
        case freeLoopbackPort
        case unixSocket(path: String)
    }

    /// How the readiness probe reaches a server that is not open to all:
    /// credentials when its ACL turns the default user off, TLS settings when
    /// it listens on a TLS port only (then `--tls-*` files go in `arguments`).
    public struct Access: Sendable {
        public var username: String?
        public var password: String?
        public var tls: RedisTLS?

        public init(username: String? = nil, password: String? = nil, tls: RedisTLS? = nil) {
            self.username = username
            self.password = password
            self.tls = tls
        }
    }

    public let directory: URL
    public let endpoint: RedisConfiguration.Endpoint
    /// Without credentials: `redis://`, `rediss://` (TLS) or `unix://`.
    public var url: String {
        switch endpoint {
        case .tcp(let host, let port): "\(access.tls == nil ? "redis" : "rediss")://\(host):\(port)"
        case .unixSocket(let path): "unix://\(path)"
        }
    }
    /// The pid of the running child (the wrapper's, when there is one); nil once stopped.
    public var pid: Int32? { lock.withLock { process?.processIdentifier } }

    private let launch: RedisLaunch
    private let access: Access
    private let logger: Logger
    private let lock = NSLock()
    private var process: Process?

    private init(
        directory: URL, endpoint: RedisConfiguration.Endpoint, launch: RedisLaunch, access: Access, logger: Logger
    ) {
        self.directory = directory
        self.endpoint = endpoint
        self.launch = launch
        self.access = access
        self.logger = logger
    }

    /// Starts the server and returns once it answers PING as the process we started.
    /// `arguments` come after the defaults (`--save ""`, no daemon), so they may override them.
    public static func start(
        directory: URL, listener: Listener = .freeLoopbackPort, arguments: [String] = [],
        wrapper: RedisWrapper? = nil, access: Access = Access(), logger: Logger = Logger(label: "local-redis")
    ) async throws -> LocalRedisServer {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let redisServer = try redisServerPath()
        guard case .unixSocket(let path) = listener else {
            return try await startOnFreePort(directory, redisServer, arguments, wrapper, access, logger)
        }
        let launch = RedisLaunch(
            redisServer: redisServer, directory: directory,
            listenArguments: ["--port", "0", "--unixsocket", path, "--unixsocketperm", "700"],
            arguments: arguments, wrapper: wrapper)
        let server = LocalRedisServer(
            directory: directory, endpoint: .unixSocket(path: path), launch: launch, access: access, logger: logger)
        try await server.restart()
        return server
    }

    /// A port chosen free can be taken before Redis binds it: Redis then exits, and we try another.
    private static func startOnFreePort(
        _ directory: URL, _ redisServer: String, _ arguments: [String], _ wrapper: RedisWrapper?, _ access: Access,
        _ logger: Logger
    ) async throws -> LocalRedisServer {
        var lastError: (any Error)?
        for _ in 0..<20 {
            let port = String(try freeLoopbackPort())
            let ports = access.tls == nil ? ["--port", port] : ["--port", "0", "--tls-port", port]
            let launch = RedisLaunch(
                redisServer: redisServer, directory: directory,
                listenArguments: ports + ["--bind", "127.0.0.1"], arguments: arguments, wrapper: wrapper)
            let server = LocalRedisServer(
                directory: directory, endpoint: .tcp(host: "127.0.0.1", port: Int(port)!), launch: launch, access: access,
                logger: logger)
            do {
                try await server.restart()
                return server
            } catch {
                lastError = error
            }
        }
        throw lastError ?? LocalRedisError("could not start redis-server in \(directory.path)")
    }

    /// Starts the server (again) on the same endpoint and data directory; kills the child on failure.
    public func restart() async throws {
        let child = try launch.run()
        lock.withLock { process = child }
        guard try await waitUntilAnswering(child) else {
            await stop()  // not kill(): SIGTERM reaches a wrapper's Redis too
            throw LocalRedisError("redis-server did not start on \(url) (see \(launch.logFile.path))")
        }
        logger.info(
            "started redis-server",
            metadata: ["pid": "\(child.processIdentifier)", "url": "\(url)", "dir": "\(directory.path)"])
    }

    /// SIGTERM (Redis flushes the AOF and exits), SIGKILL after 10 s; waits for the exit.
    public func stop() async {
        guard let child = takeProcess(), child.isRunning else { return }
        child.terminate()
        for _ in 0..<200 where child.isRunning {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if child.isRunning { signalAndWait(child, SIGKILL) }
        logger.info("stopped redis-server", metadata: ["pid": "\(child.processIdentifier)"])
    }

    /// SIGKILL, and the (immediate) exit waited for: an outage at once, nothing flushed.
    public func kill() {
        guard let child = takeProcess(), child.isRunning else { return }
        signalAndWait(child, SIGKILL)
    }

    deinit {
        if let process, process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }

    private func takeProcess() -> Process? {
        lock.withLock {
            defer { process = nil }
            return process
        }
    }

    private func signalAndWait(_ child: Process, _ signal: Int32) {
        Foundation.kill(child.processIdentifier, signal)
        child.waitUntilExit()
    }

    /// True once PING is answered and INFO names the pid our Redis wrote to its pid file (not
    /// another server on a port just taken); false when the child exits first or stays silent.
    private func waitUntilAnswering(_ child: Process) async throws -> Bool {
        let configuration = RedisConfiguration(
            endpoint: endpoint, username: access.username, password: access.password ?? launch.password, tls: access.tls,
            connectTimeout: .milliseconds(500), commandTimeout: .milliseconds(500))
        for _ in 0..<500 {
            guard child.isRunning else { return false }
            if let pid = launch.writtenPid(), await answers(configuration, asPid: pid) { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    private func answers(_ configuration: RedisConfiguration, asPid pid: Int32) async -> Bool {
        guard
            let connection = try? await RedisConnection.connect(
                configuration: configuration, eventLoop: MultiThreadedEventLoopGroup.singleton.any(), logger: logger)
        else { return false }
        defer { connection.closeNow() }
        guard let replies = try? await connection.pipeline([RedisCommand("PING"), RedisCommand("INFO", "server")]),
            case .success(let pong) = replies[0], pong.string == "PONG",
            case .success(let info) = replies[1]
        else { return false }
        let processLine = "process_id:\(pid)"
        return info.string?.split(whereSeparator: \.isNewline).contains { $0 == processLine } == true
    }
}

public struct LocalRedisError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
