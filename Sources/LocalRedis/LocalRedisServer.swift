public import Foundation
public import Logging
import NIOPosix
public import RedisClient
import Subprocess
import Synchronization

/// Runs `body` next to a private `redis-server` child: its own data directory, a
/// free loopback port or a unix socket, extra configuration arguments. Returns
/// once the server has stopped (SIGTERM, so an AOF is flushed): the server
/// never outlives the call, whether `body` returns, throws or is cancelled.
///
/// A child task of this call supervises the process (swift-subprocess `run`,
/// once per start); `body` runs in the calling task, with a handle that can
/// stop, kill and restart the server. Used by `threadweave serve`, `threadweave
/// redis-server` (the scripts' launcher) and the tests' `RedisTestServer`.
///
/// `arguments` come after the defaults (`--save ""`, no daemon), so they may
/// override them. `standardOutput`, when given, is a descriptor the server's
/// processes hold as stdout until they have all exited (`serve` locks its data
/// directory with it); the caller keeps it open for the whole call.
public func withLocalRedisServer<Result>(
    directory: URL, listener: LocalRedisServer.Listener = .freeLoopbackPort, arguments: [String] = [],
    readiness: LocalRedisServer.Readiness = .answering, access: LocalRedisServer.Access = .init(),
    standardOutput: Int32? = nil,
    logger: Logger = Logger(label: "local-redis"),
    _ body: (LocalRedisServer) async throws -> Result
) async throws -> Result {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let server = LocalRedisServer(
        directory: directory, listener: listener, arguments: arguments, readiness: readiness,
        redisServer: try redisServerPath(), access: access, standardOutput: standardOutput, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self, returning: Result.self) { group in
        group.addTask { await server.supervise() }
        let result: Swift.Result<Result, any Error>
        do {
            try await server.startOnFreeEndpoint()
            result = .success(try await body(server))
        } catch {
            result = .failure(error)
        }
        await server.stop()
        server.endSupervision()
        try await group.waitForAll()
        return try result.get()
    }
}

/// The handle `withLocalRedisServer` hands its body. Only the processes this
/// handle started are ever signalled, and only while they are not yet reaped,
/// so a pid can never name another process.
public final class LocalRedisServer: Sendable {
    public enum Listener: Sendable, Hashable {
        /// A loopback TCP port the kernel hands out at start (another one if it is taken meanwhile).
        case freeLoopbackPort
        /// This loopback TCP port, e.g. where an earlier server of the same data ran; no other is tried.
        case loopbackPort(Int)
        case unixSocket(path: String)
    }

    /// When a start counts as done (and `body` runs, or `restart()` returns).
    public enum Readiness: Sendable {
        /// PING is answered: the data is loaded.
        case answering
        /// Connections are accepted (INFO answered), while the server may still answer
        /// -LOADING as it replays its data: an outage's end can be observed from its start.
        case listening
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
    /// Fixed once the body runs: restarts reuse it.
    public var endpoint: RedisConfiguration.Endpoint { state.withLock { $0.launch.endpoint } }
    /// Without credentials: `redis://`, `rediss://` (TLS) or `unix://`.
    public var url: String {
        switch endpoint {
        case .tcp(let host, let port): "\(access.tls == nil ? "redis" : "rediss")://\(host):\(port)"
        case .unixSocket(let path): "unix://\(path)"
        }
    }
    /// Redis's own pid while it runs (once ready); nil once stopped.
    public var pid: Int32? { state.withLock { $0.running?.redisPid } }
    public var logFile: URL { directory.appendingPathComponent("redis.log") }

    private struct Launch: Sendable {
        var endpoint: RedisConfiguration.Endpoint
        var redis: RedisLaunch
    }

    /// One started process (the supervisor script, Redis its child), until it has exited.
    private struct Running {
        let generation: Int
        let supervisorPid: Int32
        var redisPid: Int32?
        var exited = false
    }

    private struct State {
        var launch: Launch
        var generation = 0
        var running: Running?
        /// A start asked for and not yet taken up by the supervising task.
        var pendingStart: CheckedContinuation<Void, any Error>?
        var supervisionEnded = false
    }

    private let listener: Listener
    private let arguments: [String]
    private let readiness: Readiness
    private let redisServer: String
    private let access: Access
    private let standardOutput: Int32?
    private let logger: Logger
    private let state: Mutex<State>
    private let wakeUps: AsyncStream<Void>
    private let wakeUp: AsyncStream<Void>.Continuation

    fileprivate init(
        directory: URL, listener: Listener, arguments: [String], readiness: Readiness, redisServer: String,
        access: Access, standardOutput: Int32?, logger: Logger
    ) {
        self.directory = directory
        self.listener = listener
        self.arguments = arguments
        self.readiness = readiness
        self.redisServer = redisServer
        self.access = access
        self.standardOutput = standardOutput
        self.logger = logger
        let placeholder = Launch(
            endpoint: .tcp(host: "127.0.0.1", port: 0),
            redis: RedisLaunch(redisServer: redisServer, directory: directory, listenArguments: [], arguments: arguments))
        state = Mutex(State(launch: placeholder))
        (wakeUps, wakeUp) = AsyncStream.makeStream(of: Void.self)
    }

    /// Starts the server (again) on the same endpoint and data directory, and
    /// returns once it answers PING as the process we started.
    public func restart() async throws {
        let url = url
        try await withCheckedThrowingContinuation { (reply: CheckedContinuation<Void, any Error>) in
            let refusal: LocalRedisError? = state.withLock { state in
                if state.supervisionEnded { return LocalRedisError("the server's scope has ended") }
                if state.running != nil || state.pendingStart != nil {
                    return LocalRedisError("redis-server is already running on \(url); stop it first")
                }
                state.pendingStart = reply
                return nil
            }
            if let refusal { reply.resume(throwing: refusal) } else { wakeUp.yield() }
        }
    }

    /// Returns once the server runs no longer: it exited by itself (killed from outside, say),
    /// or was stopped or killed; at once when none runs. Also returns when the task is cancelled.
    public func untilExited() async {
        while state.withLock({ $0.running != nil }), !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// SIGTERM (Redis flushes the AOF and exits), SIGKILL after 10 s; waits for the exit.
    public func stop() async {
        guard let generation = signalRunning({ running in Foundation.kill(running.supervisorPid, SIGTERM) }) else { return }
        if await waitForExit(of: generation, timeout: .seconds(10)) { return }
        await kill()
    }

    /// SIGKILL to Redis, and the (immediate) exit waited for: an outage at once, nothing flushed.
    public func kill() async {
        guard let generation = signalRunning({ Self.killRedis($0) }) else { return }
        _ = await waitForExit(of: generation, timeout: nil)
    }

    /// Redis alone when it answered (its supervisor reaps it and exits at once, so no orphan is
    /// left behind), else the supervisor's whole process group (it leads a session of its own).
    private static func killRedis(_ running: Running) -> Int32 {
        Foundation.kill(running.redisPid ?? -running.supervisorPid, SIGKILL)
    }

    /// Sends a signal under the lock, so never after the process was reaped; the generation signalled.
    private func signalRunning(_ send: (Running) -> Int32) -> Int? {
        state.withLock { state in
            guard let running = state.running, !running.exited else { return nil }
            _ = send(running)
            return running.generation
        }
    }

    private func waitForExit(of generation: Int, timeout: Duration?) async -> Bool {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        while state.withLock({ $0.running?.generation == generation }) {
            if let deadline, ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    // MARK: The supervising task

    /// The first start: a port chosen free can be taken before Redis binds it; Redis then exits, and we try another.
    fileprivate func startOnFreeEndpoint() async throws {
        switch listener {
        case .unixSocket(let path):
            setLaunch(.unixSocket(path: path), ["--port", "0", "--unixsocket", path, "--unixsocketperm", "700"])
            return try await restart()
        case .loopbackPort(let port):
            setLoopbackLaunch(port)
            return try await restart()
        case .freeLoopbackPort:
            var lastError: (any Error)?
            for _ in 0..<20 {
                setLoopbackLaunch(try freeLoopbackPort())
                do {
                    return try await restart()
                } catch let error as LocalRedisError {
                    lastError = error
                }
            }
            throw lastError ?? LocalRedisError("could not start redis-server in \(directory.path)")
        }
    }

    private func setLoopbackLaunch(_ port: Int) {
        let ports = access.tls == nil ? ["--port", "\(port)"] : ["--port", "0", "--tls-port", "\(port)"]
        setLaunch(.tcp(host: "127.0.0.1", port: port), ports + ["--bind", "127.0.0.1"])
    }

    private func setLaunch(_ endpoint: RedisConfiguration.Endpoint, _ listenArguments: [String]) {
        let redis = RedisLaunch(
            redisServer: redisServer, directory: directory, listenArguments: listenArguments, arguments: arguments)
        state.withLock { $0.launch = Launch(endpoint: endpoint, redis: redis) }
    }

    /// Runs each asked-for start until the body's scope ends; a start asked for after that is refused.
    fileprivate func supervise() async {
        for await _ in wakeUps {
            guard let (reply, launch) = takePendingStart() else { continue }
            await runOnce(launch, reply: reply)
        }
        let unanswered = state.withLock { state in
            state.supervisionEnded = true
            defer { state.pendingStart = nil }
            return state.pendingStart
        }
        unanswered?.resume(throwing: CancellationError())
    }

    fileprivate func endSupervision() {
        wakeUp.finish()
    }

    private func takePendingStart() -> (CheckedContinuation<Void, any Error>, Launch)? {
        state.withLock { state in
            guard let reply = state.pendingStart else { return nil }
            state.pendingStart = nil
            state.generation += 1
            return (reply, state.launch)
        }
    }

    /// One process, from spawn to reaping: `reply` is resumed once it answers, or with why it did not.
    private func runOnce(_ launch: Launch, reply: CheckedContinuation<Void, any Error>) async {
        var replied = false
        func answer(_ outcome: Swift.Result<Void, any Error>) {
            guard !replied else { return }
            replied = true
            reply.resume(with: outcome)
        }
        launch.redis.removeStalePidFile()
        var options = PlatformOptions()
        options.createSession = true  // a terminal's Ctrl-C reaches only us, and kill() can signal the group
        // Cancelled: SIGTERM (passed on to Redis), then SIGKILL to the whole group.
        options.teardownSequence = [
            .gracefulShutDown(allowedDurationToNextStep: .seconds(10)),
            .send(signal: .kill, toProcessGroup: true, allowedDurationToNextStep: .seconds(1)),
        ]
        // Our copy is close-on-exec, so no other child inherits it; the spawn makes it Redis's stdout.
        let output = standardOutput.map { fcntl($0, F_DUPFD_CLOEXEC, 0) } ?? open("/dev/null", O_WRONLY | O_CLOEXEC)
        do {
            guard output >= 0 else { throw LocalRedisError("no descriptor for redis-server's stdout: \(errnoText())") }
            _ = try await Subprocess.run(
                .path("/bin/bash"), arguments: .init(launch.redis.supervisorArguments), platformOptions: options,
                input: .inputWriter, output: .fileDescriptor(.init(rawValue: output), closeAfterSpawningProcess: true),
                error: .sequence
            ) { execution in
                let generation = state.withLock { state in
                    state.running = Running(generation: state.generation, supervisorPid: execution.processIdentifier.value)
                    return state.generation
                }
                // Cleared before `run` reaps the process: no signal is sent after that.
                defer { state.withLock { $0.running = nil } }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        // Nothing writes to stderr but the descriptor stays open: EOF means every process exited.
                        for try await _ in execution.standardError {}
                        self.state.withLock { if $0.running?.generation == generation { $0.running?.exited = true } }
                    }
                    if let redisPid = try await waitUntilReady(launch) {
                        state.withLock { $0.running?.redisPid = redisPid }
                        logger.info(
                            "started redis-server",
                            metadata: [
                                "pid": "\(redisPid)", "url": "\(url)", "port": "\(launch.endpoint.tcpPort.map { "\($0)" } ?? "-")",
                                "dir": "\(directory.path)",
                            ])
                        answer(.success(()))
                    } else {
                        _ = signalRunning { Self.killRedis($0) }
                    }
                    try await group.waitForAll()
                }
                try? await execution.standardInputWriter.finish()
                if replied { logger.info("stopped redis-server", metadata: ["url": "\(url)"]) }
            }
        } catch {
            answer(.failure(error))
        }
        answer(.failure(LocalRedisError("redis-server did not start on \(url) (see \(launch.redis.logFile.path))")))
    }

    /// Redis's pid once it is ready (`readiness`: PING answered, or merely a connection made) and
    /// INFO names the pid our Redis wrote to its pid file (not another server on a port just
    /// taken); nil when it exits first or stays silent.
    private func waitUntilReady(_ launch: Launch) async throws -> Int32? {
        let configuration = RedisConfiguration(
            endpoint: launch.endpoint, username: access.username, password: access.password ?? launch.redis.password,
            tls: access.tls, connectTimeout: .milliseconds(500), commandTimeout: .milliseconds(500))
        for _ in 0..<500 {
            guard state.withLock({ $0.running?.exited == false }) else { return nil }
            if let pid = launch.redis.writtenPid(), await isReady(configuration, asPid: pid) { return pid }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    private func isReady(_ configuration: RedisConfiguration, asPid pid: Int32) async -> Bool {
        guard
            let connection = try? await RedisConnection.connect(
                configuration: configuration, eventLoop: MultiThreadedEventLoopGroup.singleton.any(), logger: logger)
        else { return false }
        defer { connection.closeNow() }
        // INFO is answered while the data loads, PING (-LOADING) is not.
        guard let replies = try? await connection.pipeline([RedisCommand("PING"), RedisCommand("INFO", "server")]),
            readiness == .listening || (try? replies[0].get().string) == "PONG",
            case .success(let info) = replies[1]
        else { return false }
        let processLine = "process_id:\(pid)"
        return info.string?.split(whereSeparator: \.isNewline).contains { $0 == processLine } == true
    }
}

extension RedisConfiguration.Endpoint {
    fileprivate var tcpPort: Int? {
        guard case .tcp(_, let port) = self else { return nil }
        return port
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }

public struct LocalRedisError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
