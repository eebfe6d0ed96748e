public import Logging
public import RedisClient
public import ServiceLifecycle
import Synchronization
public import ThreadDomain

/// The write side's feed for `watch-thread`, shared by every watch stream of a
/// process: a hub that follows all watched threads over at most `lanes`
/// blocking connections, whatever the number of open streams. A thread
/// belongs to lane `partition mod lanes`; each lane runs one `XREAD BLOCK`
/// over all of its watched thread streams (from the last version each needs)
/// plus the process's wake stream for that lane, and fans what it reads out
/// to the subscribers. A blocked read cannot take new keys, so a subscription
/// that needs a stream the read does not cover adds an entry to the wake
/// stream, and the lane comes back at once and reads again with the new set.
///
/// Access is checked on the write side (the thread's own stream), and each
/// subscriber evolves the thread's state with every event, so its feed ends
/// when the thread is destroyed or the watcher stops taking part.
///
/// A `Service`: run it in the process's `ServiceGroup` (after the pool it
/// uses); its lanes run in `run()`, and graceful shutdown ends every feed.
public struct ThreadWatcher: Service, Sendable {
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

        public init(maximumStreams: Int = 10_000, maximumStreamsPerAccount: Int = 16) {
            self.maximumStreams = maximumStreams
            self.maximumStreamsPerAccount = maximumStreamsPerAccount
        }
    }

    /// A checked watch, ready to stream, holding its place under `Limits`
    /// and in the hub until `stream` ends or `stop()` is called.
    public struct Subscription: Sendable {
        public let threadId: ThreadID
        public let accountId: AccountID
        /// Events after this version are delivered.
        public let after: Int64
        let state: ThreadState
        let deliveries: AsyncStream<WatchHub.Delivery>
        let hub: WatchHub
        let subscriberId: Int
        let place: OpenStreams.Place

        /// Ends the stream from any task and frees its place (again is
        /// harmless): a client that went away while the thread is quiet
        /// costs nothing further.
        public func stop() {
            hub.unsubscribe(subscriberId)
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

    private let hub: WatchHub
    private let store: RedisEventStore
    private let layout: KeyLayout
    private let openStreams: OpenStreams

    /// Make one watcher per process, share it and run it: it counts the open
    /// streams against `limits` and holds at most `lanes` Redis connections
    /// (at most the partition count). On Redis Cluster every partition is a
    /// lane of its own, whatever `lanes` says: the keys of one `XREAD` must
    /// share a hash slot, and the lane's connection goes to that slot's node.
    public init(
        pool: RedisConnectionPool, layout: KeyLayout, logger: Logger, heartbeatInterval: Duration = .seconds(15),
        limits: Limits = .init(), lanes: Int = 4
    ) {
        self.layout = layout
        self.openStreams = OpenStreams(limits: limits)
        self.store = RedisEventStore(redis: pool, layout: layout, logger: logger)
        self.hub = WatchHub(
            pool: pool, layout: layout, lanes: max(1, min(lanes, layout.partitionCount)), heartbeatInterval: heartbeatInterval,
            logger: logger)
    }

    /// Streams open now (subscribed and not yet ended).
    public var openStreamCount: Int { openStreams.count }

    /// Redis connections the watcher holds now (one per lane in use).
    public var connectionCount: Int { hub.connectionCount }

    /// The lane (blocking connection) that follows `threadId`.
    public func lane(of threadId: ThreadID) async throws(RedisError) -> Int {
        try await hub.lane(ofPartition: layout.partition(of: threadId))
    }

    /// Runs the lanes until graceful shutdown or cancellation, then ends every feed.
    public func run() async throws {
        await hub.run()
    }

    /// Takes a place under the limits, makes sure the thread's lane has its
    /// Redis connection, then checks that the thread exists, is not
    /// destroyed, and that `accountId` takes part: all before the edge
    /// answers 200, so a refusal is still an error status. `lastEventId` (the
    /// SSE `Last-Event-ID`, a version) resumes after that event; without it
    /// only events after the current version come.
    public func subscribe(to threadId: ThreadID, as accountId: AccountID, lastEventId: Int64?) async throws(WatchError) -> Subscription {
        let place: OpenStreams.Place
        switch openStreams.open(for: accountId) {
        case .opened(let opened): place = opened
        case .processFull: throw .tooManyStreams(perAccount: false)
        case .accountFull: throw .tooManyStreams(perAccount: true)
        }
        let lane: Int
        do {
            lane = try await self.lane(of: threadId)
            try await hub.connect(lane: lane)
        } catch {
            place.close()
            throw .failed(EventStoreError(redisError: error, command: "a watch connection"))
        }
        let loaded: LoadedThread
        do {
            loaded = try await store.load(threadId, since: nil, messageIds: [], commandId: nil)
        } catch {
            place.close()
            throw .failed(error)
        }
        if let refusal = ReadAccess.refusal(of: loaded.state, threadId, for: accountId) {
            place.close()
            throw .refused(refusal)
        }
        let state = loaded.state!
        let after = lastEventId.map { max(0, min($0, state.version)) } ?? state.version
        guard let subscribed = await hub.subscribe(key: layout.threadStream(threadId), lane: lane, after: after) else {
            place.close()
            throw .failed(EventStoreError(redisError: RedisError(code: .shutdown, message: "the process is shutting down"), command: "a watch"))
        }
        return Subscription(
            threadId: threadId, accountId: accountId, after: after, state: state, deliveries: subscribed.deliveries, hub: hub,
            subscriberId: subscribed.id, place: place)
    }

    /// Delivers the subscription's events, and heartbeats while idle, until
    /// the thread is destroyed, the account stops taking part, the task is
    /// cancelled, `stop()` is called, graceful shutdown begins, its lane's
    /// connection fails, or `deliver` throws (the client went away). Frees
    /// the subscription's place at the end.
    public func stream(_ subscription: Subscription, deliver: (Item) async throws -> Void) async throws {
        defer { subscription.stop() }
        var state = subscription.state
        // A watch never ends by itself: on graceful shutdown (SIGTERM) it ends now rather than at the pod's grace period.
        try await withGracefulShutdownHandler {
            for await delivery in subscription.deliveries {
                switch delivery {
                case .heartbeat:
                    try await deliver(.heartbeat)
                case .events(let events):
                    for watched in events {
                        if watched.recorded.version > state.version, let next = ThreadDecider.evolve(state, watched.recorded) {
                            state = next
                        }
                        try await deliver(.event(watched.update))
                        if state.isDestroyed || !state.isParticipant(subscription.accountId) { return }
                    }
                }
            }
        } onGracefulShutdown: {
            subscription.stop()
        }
    }
}

/// The lanes of a `ThreadWatcher`: their connections, the subscribers'
/// feeds, and the loop that reads and fans out (the bookkeeping is `WatchHubState`).
final class WatchHub: Sendable {
    /// One event, decoded once for all its subscribers.
    struct WatchedEvent: Sendable {
        var recorded: RecordedEvent
        var update: ThreadWatcher.Update
    }

    enum Delivery: Sendable {
        case events([WatchedEvent])
        case heartbeat
    }

    typealias Feed = AsyncStream<Delivery>.Continuation

    /// A subscriber further behind than this many deliveries is dropped: its
    /// stream ends and its client resumes with `Last-Event-ID`.
    static let feedBuffer = 1_024
    /// Entries read per stream per `XREAD`.
    static let readCount = 100

    private struct Lanes {
        var connections: [Int: DedicatedRedisConnection] = [:]
        var isShutDown = false
    }

    private let pool: RedisConnectionPool
    private let layout: KeyLayout
    /// Lanes on a single node; on a cluster, one per partition (learnt from the first subscriber).
    private let singleNodeLaneCount: Int
    private let isCluster = Mutex<Bool?>(nil)
    private let heartbeatInterval: Duration
    private let logger: Logger
    /// Wake streams are per process, so another process's subscriptions never wake these lanes.
    private let processId = ULID.generate().rawValue
    private let state = Mutex(WatchHubState<Feed>())
    private let lanes = Mutex(Lanes())
    /// Lanes whose connection was just opened, for `run()` to start reading.
    private let laneStarts: AsyncStream<(lane: Int, connection: DedicatedRedisConnection)>
    private let laneStarter: AsyncStream<(lane: Int, connection: DedicatedRedisConnection)>.Continuation

    init(pool: RedisConnectionPool, layout: KeyLayout, lanes: Int, heartbeatInterval: Duration, logger: Logger) {
        self.pool = pool
        self.layout = layout
        self.singleNodeLaneCount = lanes
        self.heartbeatInterval = heartbeatInterval
        self.logger = logger
        (laneStarts, laneStarter) = AsyncStream.makeStream()
    }

    var connectionCount: Int { lanes.withLock { $0.connections.count } }

    func lane(ofPartition partition: Int) async throws(RedisError) -> Int {
        let known = isCluster.withLock { $0 }
        let cluster: Bool
        if let known {
            cluster = known
        } else {
            cluster = try await pool.isCluster
            isCluster.withLock { $0 = cluster }
        }
        return cluster ? partition : partition % singleNodeLaneCount
    }

    /// The lane's wake stream: in the hash slot of partition `lane`, which is one of the lane's own.
    private func wakeKey(lane: Int) -> String {
        "\(layout.namespace):\(layout.hashTag(partition: lane)):watch-wake:\(processId)"
    }

    func run() async {
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await withDiscardingTaskGroup { group in
                    for await (lane, connection) in laneStarts {
                        group.addTask { await self.read(lane: lane, over: connection) }
                    }
                }
            } onGracefulShutdown: {
                self.shutDown()
            }
        } onCancel: {
            self.shutDown()
        }
    }

    /// Opens the lane's connection unless it is open: the failure a
    /// subscriber answers with (a server at `maxclients` refuses the first command).
    func connect(lane: Int) async throws(RedisError) {
        guard lanes.withLock({ $0.connections[lane] == nil && !$0.isShutDown }) else { return }
        // On a cluster, the node of the lane's slot (the wake stream's, the same as its threads').
        let dedicated = try await pool.dedicatedConnection(forKey: wakeKey(lane: lane))
        do {
            _ = try await dedicated.connection.send(RedisCommand("PING"))
        } catch {
            dedicated.release()
            throw error
        }
        let installed = lanes.withLock { lanes in
            guard lanes.connections[lane] == nil, !lanes.isShutDown else { return false }
            lanes.connections[lane] = dedicated
            return true
        }
        if installed {
            laneStarter.yield((lane, dedicated))
        } else {
            // Another subscriber opened it first (or the process is stopping).
            dedicated.release()
        }
    }

    /// Registers a feed; nil once the hub shuts down.
    func subscribe(key: String, lane: Int, after: Int64) async -> (id: Int, deliveries: AsyncStream<Delivery>)? {
        let (deliveries, feed) = AsyncStream.makeStream(of: Delivery.self, bufferingPolicy: .bufferingOldest(Self.feedBuffer))
        switch state.withLock({ $0.subscribe(key: key, lane: lane, after: after, sink: feed, now: .now) }) {
        case .shutDown:
            return nil
        case .subscribed(let id, let wakeLane):
            if wakeLane { await wake(lane: lane) }
            return (id, deliveries)
        }
    }

    func unsubscribe(_ id: Int) {
        state.withLock { $0.unsubscribe(id) }?.finish()
    }

    /// Brings the lane's blocked read back now. Should this fail, the read
    /// still ends within half a heartbeat interval and takes up the new set then.
    private func wake(lane: Int) async {
        let key = wakeKey(lane: lane)
        // A crashed process's wake stream expires by itself.
        _ = try? await pool.pipeline([
            RedisCommand("XADD", key, "MAXLEN", "1", "*", "w", "1"), RedisCommand("EXPIRE", key, "600"),
        ])
    }

    /// The lane's loop: read every watched stream of the lane and the wake
    /// stream, hand out what came, send due heartbeats; until the connection
    /// fails or is closed by shutdown, which ends the lane's feeds.
    private func read(lane: Int, over dedicated: DedicatedRedisConnection) async {
        let connection = dedicated.connection
        let wakeKey = wakeKey(lane: lane)
        var wakeCursor = "0-0"
        let block = heartbeatInterval / 2
        while true {
            let reads = state.withLock { $0.reads(lane: lane) }
            var arguments = ["XREAD", "COUNT", String(Self.readCount), "BLOCK", String(max(1, block.milliseconds)), "STREAMS"]
            arguments += reads.map(\.key) + [wakeKey] + reads.map { "\($0.after)-0" } + [wakeCursor]
            let reply: RedisValue
            do {
                reply = try await connection.sendBlocking(
                    RedisCommand(arguments), timeout: block + connection.configuration.commandTimeout)
            } catch {
                logger.debug("a watch lane's connection ended", metadata: ["lane": "\(lane)", "error": "\(error)"])
                // The slot moved or its node failed over: the lane's next connection goes to the new owner.
                if !lanes.withLock({ $0.isShutDown }) { await pool.refreshTopology() }
                break
            }
            let now = ContinuousClock.now
            let readsByKey = Dictionary(uniqueKeysWithValues: reads.map { ($0.key, $0) })
            for stream in reply.array ?? [] {
                guard let pair = stream.array, pair.count == 2, let key = pair[0].string, let entries = pair[1].array else { continue }
                if key == wakeKey {
                    wakeCursor = entries.last?.array?.first?.string ?? wakeCursor
                    continue
                }
                guard let read = readsByKey[key] else { continue }
                deliver(entries, for: read, lane: lane, now: now)
            }
            for feed in state.withLock({ $0.heartbeatsDue(lane: lane, now: now, interval: heartbeatInterval) }) {
                if case .dropped = feed.yield(.heartbeat) { feed.finish() }
            }
        }
        let stillInstalled = lanes.withLock { lanes in
            guard lanes.connections[lane] === dedicated else { return false }
            lanes.connections[lane] = nil
            return true
        }
        dedicated.release()
        // Feeds of a lane that the shutdown closed are ended by the shutdown itself.
        if stillInstalled {
            for feed in state.withLock({ $0.laneFailed(lane) }) { feed.finish() }
        }
    }

    private func deliver(_ entries: [RedisValue], for read: WatchHubState<Feed>.Read, lane: Int, now: ContinuousClock.Instant) {
        let decoded: [(version: Int64, entry: WatchedEvent)]
        do throws(EventStoreError) {
            decoded = try entries.map { entry throws(EventStoreError) -> (version: Int64, entry: WatchedEvent) in
                let recorded = try StreamEntryDecoder.recordedEvent(from: entry)
                let update = ThreadWatcher.Update(
                    version: recorded.version, type: recorded.event.typeName, data: recorded.event.encodedData())
                return (recorded.version, WatchedEvent(recorded: recorded, update: update))
            }
        } catch {
            logger.error("a watched thread stream is unreadable; its watches end", metadata: ["key": "\(read.key)", "error": "\(error)"])
            for feed in state.withLock({ $0.endStream(read.key, lane: lane) }) { feed.finish() }
            return
        }
        for (feed, events) in state.withLock({ $0.received(decoded, for: read, lane: lane, now: now) }) {
            // A subscriber this far behind ends; its client resumes from its last event.
            if case .dropped = feed.yield(.events(events)) { feed.finish() }
        }
    }

    /// Refuses new subscribers, ends every feed and closes the lanes' connections.
    private func shutDown() {
        let connections = lanes.withLock { lanes in
            lanes.isShutDown = true
            defer { lanes.connections = [:] }
            return Array(lanes.connections.values)
        }
        laneStarter.finish()
        for feed in state.withLock({ $0.shutDown() }) { feed.finish() }
        for connection in connections { connection.release() }
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
