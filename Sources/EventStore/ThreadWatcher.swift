public import Logging
public import RedisClient
import ServiceLifecycle
import Synchronization
public import ThreadDomain

/// The write side's feed: follows one thread's stream for `watch-thread`: `XREAD BLOCK` on a
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

    /// How many streams may be open at once: in the whole process, and per account.
    public struct Limits: Sendable, Hashable {
        public var maximumStreams: Int
        public var maximumStreamsPerAccount: Int

        public init(maximumStreams: Int = 2_048, maximumStreamsPerAccount: Int = 16) {
            self.maximumStreams = maximumStreams
            self.maximumStreamsPerAccount = maximumStreamsPerAccount
        }
    }

    /// A checked watch, ready to stream, holding its own Redis connection
    /// and its place under `Limits` until `stream` ends or the subscription is dropped.
    public struct Subscription: Sendable {
        public let threadId: ThreadID
        public let accountId: AccountID
        /// Events after this version are delivered.
        public let after: Int64
        let state: ThreadState
        let connection: DedicatedRedisConnection
        let place: OpenStreams.Place

        /// Ends the stream from any task and frees its connection and place
        /// (again is harmless): a blocking read fails at once, so a client
        /// that went away while the thread is quiet costs nothing further.
        public func stop() {
            connection.release()
            place.close()
        }
    }

    public enum WatchError: Error, Sendable {
        /// Not found, destroyed, or not a participant: the domain's code.
        case refused(DomainError)
        /// `Limits` reached: the process's (`perAccount` false) or the account's.
        case tooManyStreams(perAccount: Bool)
        case failed(EventStoreError)
    }

    private let pool: RedisConnectionPool
    private let layout: KeyLayout
    private let heartbeatInterval: Duration
    private let openStreams: OpenStreams
    private let logger: Logger
    /// One for every stream's store: a missing library is reported once, not once per watch.
    private let reminder = SetupReminder()

    /// Make one watcher per process and share it: it counts the open streams against `limits`.
    public init(
        pool: RedisConnectionPool, layout: KeyLayout, logger: Logger, heartbeatInterval: Duration = .seconds(15),
        limits: Limits = .init()
    ) {
        self.pool = pool
        self.layout = layout
        self.heartbeatInterval = heartbeatInterval
        self.openStreams = OpenStreams(limits: limits)
        self.logger = logger
    }

    /// Streams open now (subscribed and not yet ended).
    public var openStreamCount: Int { openStreams.count }

    /// Takes a place under the limits and a Redis connection of its own, then
    /// checks that the thread exists, is not destroyed, and that `accountId`
    /// takes part: all before the edge answers 200, so a refusal is still an
    /// error status. `lastEventId` (the SSE `Last-Event-ID`, a version)
    /// resumes after that event; without it only events after the current version come.
    public func subscribe(to threadId: ThreadID, as accountId: AccountID, lastEventId: Int64?) async throws(WatchError) -> Subscription {
        let place: OpenStreams.Place
        switch openStreams.open(for: accountId) {
        case .opened(let opened): place = opened
        case .processFull: throw .tooManyStreams(perAccount: false)
        case .accountFull: throw .tooManyStreams(perAccount: true)
        }
        let connection: DedicatedRedisConnection
        let loaded: LoadedThread
        do {
            // On the node serving the thread's slot: the load and the XREAD BLOCK name only its keys.
            connection = try await pool.dedicatedConnection(forKey: layout.threadStream(threadId))
        } catch {
            throw .failed(EventStoreError(redisError: error, command: "a watch connection"))
        }
        do {
            // Loaded over the new connection itself: a server that refuses it (`maxclients`) is found out here.
            let store = RedisEventStore(redis: connection.connection, layout: layout, logger: logger, reminder: reminder)
            loaded = try await store.load(threadId, since: nil, messageIds: [], commandId: nil)
        } catch {
            connection.release()
            throw .failed(error)
        }
        if let refusal = ReadAccess.refusal(of: loaded.state, threadId, for: accountId) {
            connection.release()
            throw .refused(refusal)
        }
        let state = loaded.state!
        let after = lastEventId.map { max(0, min($0, state.version)) } ?? state.version
        return Subscription(threadId: threadId, accountId: accountId, after: after, state: state, connection: connection, place: place)
    }

    /// Delivers the subscription's events, and heartbeats while idle, until
    /// the thread is destroyed, the account stops taking part, the task is
    /// cancelled, `stop()` is called, or `deliver` throws (the client went
    /// away). Releases the subscription's connection and place at the end.
    public func stream(_ subscription: Subscription, deliver: (Item) async throws -> Void) async throws {
        defer { subscription.stop() }
        let connection = subscription.connection.connection
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

/// The open watch streams of one watcher, counted per account, under `Limits`.
final class OpenStreams: Sendable {
    enum Opening {
        case opened(Place)
        case processFull
        case accountFull
    }

    /// One stream's place; closing it (or dropping it) frees the place once.
    final class Place: Sendable {
        private let onClose: Mutex<(@Sendable () -> Void)?>

        init(onClose: @escaping @Sendable () -> Void) {
            self.onClose = Mutex(onClose)
        }

        func close() {
            onClose.withLock { onClose in defer { onClose = nil }; return onClose }?()
        }

        deinit { close() }
    }

    private struct Counts {
        var total = 0
        var perAccount: [AccountID: Int] = [:]
    }

    private let limits: ThreadWatcher.Limits
    private let counts = Mutex(Counts())

    init(limits: ThreadWatcher.Limits) {
        self.limits = limits
    }

    var count: Int { counts.withLock { $0.total } }

    func open(for accountId: AccountID) -> Opening {
        let opened: Opening? = counts.withLock { counts in
            guard counts.total < limits.maximumStreams else { return .processFull }
            guard counts.perAccount[accountId, default: 0] < limits.maximumStreamsPerAccount else { return .accountFull }
            counts.total += 1
            counts.perAccount[accountId, default: 0] += 1
            return nil
        }
        if let opened { return opened }
        return .opened(
            Place { [self] in
                counts.withLock { counts in
                    counts.total -= 1
                    let left = counts.perAccount[accountId, default: 1] - 1
                    counts.perAccount[accountId] = left == 0 ? nil : left
                }
            })
    }
}
