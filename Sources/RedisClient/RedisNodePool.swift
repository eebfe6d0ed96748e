import Logging
import NIOCore
import Synchronization

/// A pool of pipelined connections to one Redis node, shared by many tasks:
/// the whole client on a single node, one per node in a cluster.
/// `shutdown()` closes every connection (dedicated ones included); commands
/// sent after that fail with `.shutdown`.
final class RedisNodePool: RedisCommandExecutor {
    /// A command's claim on one pooled connection.
    private struct Lease: Sendable {
        var connection: RedisConnection
        var slot: Int
    }

    private enum WaitOutcome: Sendable {
        case leased(Lease)
        case retry
        case failed(RedisError)
    }

    private typealias Waiter = CheckedContinuation<WaitOutcome, Never>
    private typealias StateMachine = ConnectionPoolStateMachine<RedisConnection, Waiter>

    let configuration: RedisConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let state: Mutex<StateMachine>

    init(configuration: RedisConfiguration, eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.state = Mutex(StateMachine(maximumConnections: configuration.maximumConnections))
    }

    /// Closes every connection now; in-flight commands fail with `.connectionClosed`,
    /// later ones with `.shutdown`.
    func shutdown() async {
        let (connections, waiters) = state.withLock { $0.shutDown() }
        for waiter in waiters { waiter.resume(returning: .failed(StateMachine.shutDownError)) }
        for connection in connections { await connection.close() }
        if !connections.isEmpty {
            logger.debug("Redis connection pool shut down", metadata: ["closed": "\(connections.count)"])
        }
    }

    /// Open pooled connections (not dedicated ones), for health reporting.
    var openConnectionCount: Int {
        state.withLock { $0.openConnectionCount }
    }

    public func send(_ command: RedisCommand) async throws(RedisError) -> RedisValue {
        let lease = try await leaseConnection()
        defer { release(lease) }
        return try await lease.connection.send(command, timeout: configuration.commandTimeout)
    }

    public func pipeline(_ commands: [RedisCommand]) async throws(RedisError) -> [Result<RedisValue, RedisError>] {
        let lease = try await leaseConnection()
        defer { release(lease) }
        return try await lease.connection.pipeline(commands, timeout: configuration.commandTimeout)
    }

    /// A connection of its own, held until `release()` (or the handle's end, or the pool's shutdown).
    func dedicatedConnection(on eventLoop: (any EventLoop)? = nil) async throws(RedisError) -> DedicatedRedisConnection {
        guard !state.withLock({ $0.isShutDown }) else { throw StateMachine.shutDownError }
        let connection = try await RedisConnection.connect(
            configuration: configuration, eventLoop: eventLoop ?? eventLoopGroup.any(), logger: logger)
        guard state.withLock({ $0.addDedicated(connection) }) else {
            await connection.close()
            throw StateMachine.shutDownError
        }
        return DedicatedRedisConnection(connection: connection) { [weak self] connection in
            self?.state.withLock { $0.removeDedicated(connection) }
        }
    }

    private func leaseConnection() async throws(RedisError) -> Lease {
        // `any()` is the caller's own loop when it runs on one of the group's.
        let onOwnLoop = eventLoopGroup.any().inEventLoop
        while true {
            switch state.withLock({ $0.lease(isLocal: onOwnLoop ? { $0.isOnCurrentEventLoop } : nil) }) {
            case .use(let connection, let slot):
                return Lease(connection: connection, slot: slot)
            case .fail(let error):
                throw error
            case .connect(let slot):
                return try await openConnection(slot: slot)
            case .wait(let slot):
                switch await waitForConnection(slot: slot) {
                case .leased(let lease): return lease
                case .retry: continue
                case .failed(let error): throw error
                }
            }
        }
    }

    private func openConnection(slot: Int) async throws(RedisError) -> Lease {
        let connection: RedisConnection
        do {
            connection = try await RedisConnection.connect(
                configuration: configuration, eventLoop: eventLoopGroup.any(), logger: logger)
        } catch {
            let waiters = state.withLock { $0.connectFailed(slot: slot) }
            for waiter in waiters { waiter.resume(returning: .failed(error)) }
            throw error
        }
        let lease = Lease(connection: connection, slot: slot)
        switch state.withLock({ $0.connected(connection, slot: slot) }) {
        case .use(let waiters):
            for waiter in waiters { waiter.resume(returning: .leased(lease)) }
            return lease
        case .closeConnection(let waiters):
            for waiter in waiters { waiter.resume(returning: .failed(StateMachine.shutDownError)) }
            await connection.close()
            throw StateMachine.shutDownError
        }
    }

    private func waitForConnection(slot: Int) async -> WaitOutcome {
        await withCheckedContinuation { (continuation: Waiter) in
            switch state.withLock({ $0.addWaiter(continuation, slot: slot) }) {
            case .waiting:
                break  // resumed by openConnection or shutdown
            case .use(let connection, let slot):
                continuation.resume(returning: .leased(Lease(connection: connection, slot: slot)))
            case .retry:
                continuation.resume(returning: .retry)
            case .fail(let error):
                continuation.resume(returning: .failed(error))
            }
        }
    }

    private func release(_ lease: Lease) {
        state.withLock { $0.release(lease.connection, slot: lease.slot) }
    }
}

/// A dedicated connection's handle. `release()` (any number of times, from
/// any task) closes it; a handle dropped without release closes it too, so a
/// response body that never ran cannot leak a connection.
public final class DedicatedRedisConnection: Sendable {
    public let connection: RedisConnection
    private let forget: Mutex<(@Sendable (RedisConnection) -> Void)?>

    init(connection: RedisConnection, forget: @escaping @Sendable (RedisConnection) -> Void) {
        self.connection = connection
        self.forget = Mutex(forget)
    }

    /// Closes the connection now: a blocking command on it fails at once.
    public func release() {
        guard let forget = forget.withLock({ forget in defer { forget = nil }; return forget }) else { return }
        forget(connection)
        connection.closeNow()
    }

    deinit {
        release()
    }
}
