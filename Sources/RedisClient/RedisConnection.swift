public import Logging
public import NIOCore
import NIOPosix

/// One socket to Redis. Many tasks may send on it at once: their commands are
/// pipelined and the replies matched to them in order.
public final class RedisConnection: RedisCommandExecutor {
    private let channel: any Channel
    public let configuration: RedisConfiguration
    private let logger: Logger

    private init(channel: any Channel, configuration: RedisConfiguration, logger: Logger) {
        self.channel = channel
        self.configuration = configuration
        self.logger = logger
    }

    /// A connection nobody can reach any more must not keep its socket open.
    deinit {
        closeNow()
    }

    /// Connects (TLS first, for `rediss://`), then authenticates and selects
    /// the database, all within `configuration.connectTimeout`. Refused
    /// credentials are `.authenticationFailed`, a failed TLS handshake is
    /// `.tlsHandshakeFailed`; every other failure is `.connectionFailed`.
    public static func connect(
        configuration: RedisConfiguration, eventLoop: any EventLoop, logger: Logger
    ) async throws(RedisError) -> RedisConnection {
        let deadline = NIODeadline.now() + TimeAmount(configuration.connectTimeout)
        let endpoint = configuration.endpoint.logDescription
        let bootstrap = ClientBootstrap(group: eventLoop).connectTimeout(TimeAmount(configuration.connectTimeout))
        // The TLS handshake's outcome is taken here, with the channel: a failed handshake
        // tears the pipeline down, possibly before connect returns.
        let initialize: @Sendable (any Channel) -> EventLoopFuture<Connected> = { channel in
            channel.eventLoop.makeCompletedFuture {
                var tlsHandshake: EventLoopFuture<Void>?
                if let tls = configuration.tls, case .tcp(let host, _) = configuration.endpoint {
                    let watcher = TLSHandshakeWatcher(deadline: deadline)
                    try channel.pipeline.syncOperations.addHandler(try tls.makeHandler(host: host))
                    try channel.pipeline.syncOperations.addHandler(watcher)
                    tlsHandshake = watcher.handshake
                }
                try channel.pipeline.syncOperations.addHandler(RedisChannelHandler(logger: logger))
                return Connected(channel: channel, tlsHandshake: tlsHandshake)
            }
        }
        let connected: Connected
        do {
            switch configuration.endpoint {
            case .tcp(let host, let port):
                connected = try await bootstrap.connect(host: host, port: port, channelInitializer: initialize)
            case .unixSocket(let path):
                connected = try await bootstrap.connect(unixDomainSocketPath: path, channelInitializer: initialize)
            }
        } catch let error as ChannelError where error.isConnectTimeout {
            throw RedisError(
                code: .connectionFailed,
                message: "could not connect to \(endpoint): timed out after \(configuration.connectTimeout)",
                underlying: error)
        } catch {
            throw RedisError(
                code: .connectionFailed, message: "could not connect to \(endpoint): \(error)", underlying: error)
        }

        let channel = connected.channel
        if let tlsHandshake = connected.tlsHandshake {
            do {
                try await tlsHandshake.get()
            } catch {
                try? await channel.close()
                throw RedisError(
                    code: .tlsHandshakeFailed, message: "TLS handshake with \(endpoint) failed: \(error)", underlying: error)
            }
        }

        let connection = RedisConnection(channel: channel, configuration: configuration, logger: logger)
        do {
            try await connection.handshake(deadline: deadline)
        } catch {
            await connection.close()
            if error.code == .authenticationFailed { throw error }
            throw RedisError(
                code: .connectionFailed, message: "could not set up connection to \(endpoint): \(error.message)",
                underlying: error)
        }
        logger.debug("Connected to Redis", metadata: ["redis.endpoint": "\(endpoint)"])
        return connection
    }

    /// A connected channel, and the outcome of its TLS handshake when it has one.
    private struct Connected: Sendable {
        var channel: any Channel
        var tlsHandshake: EventLoopFuture<Void>?
    }

    /// AUTH and SELECT, pipelined. A refusal is reported with the server's text
    /// (which never contains the password).
    private func handshake(deadline: NIODeadline) async throws(RedisError) {
        var commands: [RedisCommand] = []
        if let password = configuration.password {
            commands.append(
                configuration.username.map { RedisCommand("AUTH", $0, password) } ?? RedisCommand("AUTH", password))
        }
        if configuration.database != 0 {
            commands.append(RedisCommand("SELECT", String(configuration.database)))
        }
        guard !commands.isEmpty else { return }
        let results = try await pipeline(commands, deadline: deadline)
        for (command, result) in zip(commands, results) {
            guard case .failure(let error) = result else { continue }
            if command.name == "AUTH" { throw credentialsRefused(error) }
            throw RedisError(code: .server, message: "\(command.name) failed: \(error.message)", underlying: error)
        }
    }

    /// Names the user, never the password: `Redis refused the credentials for user 'app' (WRONGPASS)`.
    private func credentialsRefused(_ error: RedisError) -> RedisError {
        let prefix = error.serverErrorPrefix
        let reason = prefix == "WRONGPASS" ? "WRONGPASS" : error.message
        return RedisError(
            code: .authenticationFailed,
            message: "Redis refused the credentials for user '\(configuration.username ?? "default")' (\(reason))",
            underlying: error)
    }

    public var isClosed: Bool { !channel.isActive }

    /// Closes the socket; commands still in flight fail with `.connectionClosed`.
    public func close() async {
        guard !isClosed else { return }
        try? await channel.close()
    }

    /// Starts closing without waiting: in-flight commands fail with `.connectionClosed`.
    /// A closed channel is left alone: closing it again would hop to its event
    /// loop, which may have shut down since (it closed its channels then).
    public func closeNow() {
        if !isClosed { channel.close(promise: nil) }
    }

    public func send(_ command: RedisCommand) async throws(RedisError) -> RedisValue {
        try await send(command, timeout: configuration.commandTimeout)
    }

    /// Sends one command. A `nil` timeout waits forever; the wait then ends
    /// only with a reply or the task's cancellation (see `sendBlocking`). With
    /// a timeout, cancellation is not observed: a pipelined command cannot be
    /// withdrawn, and its reply or the timeout ends the wait soon enough.
    public func send(_ command: RedisCommand, timeout: Duration?) async throws(RedisError) -> RedisValue {
        guard let timeout else { return try await sendBlocking(command, timeout: nil) }
        return try await replies(to: [command], deadline: Self.deadline(after: timeout))[0].get()
    }

    /// Sends a blocking command (`XREAD BLOCK`, `XREADGROUP BLOCK`) on a
    /// connection of its own: cancelling the waiting task closes the
    /// connection and fails the command with `.cancelled`, so a shutdown
    /// need not wait out the block; the timeout, if any, still bounds the wait.
    public func sendBlocking(_ command: RedisCommand, timeout: Duration?) async throws(RedisError) -> RedisValue {
        let deadline = timeout.map(Self.deadline(after:))
        let results = await withTaskCancellationHandler {
            await self.replies(to: [command], deadline: deadline)
        } onCancel: { [channel] in
            channel.triggerUserOutboundEvent(CancelInFlightCommands(), promise: nil)
        }
        return try results[0].get()
    }

    /// An executor on this connection's event loop, where its replies arrive.
    public var taskExecutor: EventLoopTaskExecutor { EventLoopTaskExecutor(channel.eventLoop) }

    /// Whether the caller runs on this connection's event loop.
    var isOnCurrentEventLoop: Bool { channel.eventLoop.inEventLoop }

    public func pipeline(_ commands: [RedisCommand]) async throws(RedisError) -> [Result<RedisValue, RedisError>] {
        try await pipeline(commands, timeout: configuration.commandTimeout)
    }

    /// `pipeline(_:)` with an explicit timeout per command (nil: wait forever).
    public func pipeline(
        _ commands: [RedisCommand], timeout: Duration?
    ) async throws(RedisError) -> [Result<RedisValue, RedisError>] {
        try await pipeline(commands, deadline: timeout.map(Self.deadline(after:)))
    }

    private func pipeline(
        _ commands: [RedisCommand], deadline: NIODeadline?
    ) async throws(RedisError) -> [Result<RedisValue, RedisError>] {
        let results = await replies(to: commands, deadline: deadline)
        // Only server replies are per-command; anything else broke the connection for all of them.
        for case .failure(let error) in results where error.code != .server {
            throw error
        }
        return results
    }

    /// Writes the commands in one batch and waits for all their replies: one
    /// await per batch, since awaiting each reply would hop threads once per command.
    private func replies(to commands: [RedisCommand], deadline: NIODeadline?) async -> [Result<RedisValue, RedisError>] {
        let batch = ReplyBatch(count: commands.count)
        let requests = commands.enumerated().map { index, command in
            RedisRequest(command: command, reply: ReplySlot(batch: batch, index: index), deadline: deadline)
        }
        return await batch.replies { write(requests) }
    }

    /// One write per batch keeps a pipeline's commands contiguous on the wire.
    private func write(_ requests: [RedisRequest]) {
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { error in
            // Reaches requests the handler never saw, e.g. written after the channel was torn down.
            let failure = RedisError(code: .connectionClosed, message: "could not send: \(error)", underlying: error)
            for request in requests { request.reply.fail(failure) }
        }
        channel.writeAndFlush(requests, promise: written)
    }

    private static func deadline(after timeout: Duration) -> NIODeadline {
        .now() + TimeAmount(timeout)
    }
}

extension ChannelError {
    fileprivate var isConnectTimeout: Bool {
        if case .connectTimeout = self { true } else { false }
    }
}

extension RedisConfiguration.Endpoint {
    /// Host and port or socket path: never credentials.
    var logDescription: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unixSocket(let path): "unix:\(path)"
        }
    }
}
