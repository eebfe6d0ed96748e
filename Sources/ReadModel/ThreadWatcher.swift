public import EventStore
public import Logging
public import RedisClient
public import ThreadDomain
import ServiceLifecycle

/// Follows one thread's stream for `watch-thread`: `XREAD BLOCK` on a
/// dedicated connection, from a version on. Access is checked on the write
/// side (the thread's own stream), and the state is evolved with every event,
/// so the feed ends when the thread is destroyed or the watcher stops taking part.
public struct ThreadWatcher: Sendable {
    /// One event as the feed delivers it: the SSE `id`, `event` and `data`.
    public struct Update: Sendable, Hashable {
        public var version: Int64
        public var type: String
        /// The event's data JSON (the wire format of docs/ARCHITECTURE.md).
        public var data: String
    }

    public enum Item: Sendable, Hashable {
        case event(Update)
        /// Nothing happened for a heartbeat interval: lets the edge keep the connection alive.
        case heartbeat
    }

    /// A checked watch, ready to stream.
    public struct Subscription: Sendable {
        public let threadId: ThreadID
        public let accountId: AccountID
        /// Events after this version are delivered.
        public let after: Int64
        let state: ThreadState
    }

    public enum WatchError: Error, Sendable {
        /// Not found, destroyed, or not a participant: the domain's code.
        case refused(DomainError)
        case failed(ReadModelError)
    }

    private let pool: RedisConnectionPool
    private let layout: KeyLayout
    private let store: RedisEventStore
    private let heartbeatInterval: Duration
    private let logger: Logger

    public init(pool: RedisConnectionPool, layout: KeyLayout, logger: Logger, heartbeatInterval: Duration = .seconds(15)) {
        self.pool = pool
        self.layout = layout
        self.store = RedisEventStore(redis: pool, layout: layout, logger: logger)
        self.heartbeatInterval = heartbeatInterval
        self.logger = logger
    }

    /// Checks that the thread exists, is not destroyed, and that `accountId`
    /// takes part. `lastEventId` (the SSE `Last-Event-ID`, a version) resumes
    /// after that event; without it only events after the current version come.
    public func subscribe(to threadId: ThreadID, as accountId: AccountID, lastEventId: Int64?) async throws(WatchError) -> Subscription {
        let loaded: LoadedThread
        do {
            loaded = try await store.load(threadId, since: nil, messageIds: [], commandId: nil)
        } catch {
            throw .failed(ReadModelError(error.code == .unavailable ? .unavailable : .corruptData, "thread \(threadId) could not be loaded", underlying: error))
        }
        guard let state = loaded.state else { throw .refused(DomainError(.threadNotFound, "thread \(threadId) does not exist")) }
        guard !state.isDestroyed else { throw .refused(DomainError(.threadDestroyed, "thread \(threadId) was destroyed")) }
        guard state.isParticipant(accountId) else {
            throw .refused(DomainError(.notParticipant, "account \(accountId) does not take part in thread \(threadId)"))
        }
        let after = lastEventId.map { max(0, min($0, state.version)) } ?? state.version
        return Subscription(threadId: threadId, accountId: accountId, after: after, state: state)
    }

    /// Delivers the subscription's events, and heartbeats while idle, until
    /// the thread is destroyed, the account stops taking part, the task is
    /// cancelled, or `deliver` throws (the client went away).
    public func stream(_ subscription: Subscription, deliver: (Item) async throws -> Void) async throws {
        try await pool.withDedicatedConnection { connection in
            var state = subscription.state
            var cursor = subscription.after
            let key = layout.threadStream(subscription.threadId)
            while !Task.isCancelled {
                let read = RedisCommand(
                    "XREAD", "COUNT", "100", "BLOCK", String(heartbeatInterval.milliseconds), "STREAMS", key, "\(cursor)-0")
                let timeout = heartbeatInterval + connection.configuration.commandTimeout
                // A watch never ends by itself: on graceful shutdown (SIGTERM) the blocking
                // read is cancelled, so the stream ends now rather than at the pod's grace period.
                let reply = try await cancelWhenGracefulShutdown {
                    try await connection.sendBlocking(read, timeout: timeout)
                }
                guard let streams = reply.array, let entries = streams.first?.array?.last?.array else {
                    try await deliver(.heartbeat)
                    continue
                }
                for entry in entries {
                    let recorded = try StreamEntryDecoder.recordedEvent(from: entry)
                    cursor = recorded.version
                    if recorded.version > state.version, let next = ThreadDecider.evolve(state, recorded) { state = next }
                    try await deliver(
                        .event(Update(version: recorded.version, type: recorded.event.typeName, data: recorded.event.encodedData())))
                    if state.isDestroyed || !state.isParticipant(subscription.accountId) { return }
                }
            }
        }
    }
}
