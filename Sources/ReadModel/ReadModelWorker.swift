public import EventStore
import Foundation
public import Logging
public import Metrics
public import RedisClient
public import ServiceLifecycle
import NIOCore
import NIOPosix
import Synchronization
import ThreadDomain

/// The read-model updater of DESIGN §3: reads every partition's change log
/// through consumer group `rmu`, projects, then acknowledges. Entries other
/// consumers left pending are claimed with XAUTOCLAIM once idle long enough;
/// entries delivered too often, or undecodable, go to `tw:{pNN}:dead`.
///
/// Graceful shutdown stops reading and finishes (and acknowledges) the batch
/// in hand; cancellation stops at once, leaving the batch pending for others.
public struct ReadModelWorker: Service {
    public struct Configuration: Sendable {
        /// This worker's name in the consumer group; unique per live process.
        public var consumerName: String
        /// Entries per XREADGROUP / XAUTOCLAIM call.
        public var batchSize = 100
        /// Connections a round's applies are spread over, the reading one
        /// included, where one read takes many logs (one node). On a cluster
        /// each partition is read on a connection of its own, which takes
        /// that partition's applies.
        public var applyConnections = 4
        /// How long one XREADGROUP blocks: also how long a graceful shutdown may wait.
        public var block: Duration = .seconds(1)
        /// After a read that caught up, how long the next waits so the logs'
        /// entries gather into one round (`WorkerStateMachine.Configuration.gatherPause`).
        public var gatherPause: Duration = .milliseconds(2)
        /// Entries pending this long with another consumer are taken over.
        public var claimIdleThreshold: Duration = .seconds(30)
        public var claimInterval: Duration = .seconds(15)
        public var maximumDeliveries = 5
        /// How often the lag, pending and dead-letter gauges are refreshed.
        public var metricsInterval: Duration = .seconds(10)
        /// Pause after a failed round (Redis away), so the loop does not spin.
        public var retryPause: Duration = .seconds(1)

        public init(consumerName: String) {
            self.consumerName = consumerName
        }

        /// `THREADWEAVE_CONSUMER` if set, else `<hostname>-<pid>`: unique per live process.
        public static func defaultConsumerName(environment: [String: String]) -> String {
            if let name = environment["THREADWEAVE_CONSUMER"], !name.isEmpty { return name }
            return "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
        }
    }

    public let configuration: Configuration
    /// When the consuming loop last went round: a worker whose loop has not
    /// moved for long is hung, and its liveness probe says so.
    public let progress = WorkerProgress()
    private let pool: RedisConnectionPool
    private let layout: KeyLayout
    private let projector: Projector
    private let monitor: ConsumerGroupMonitor
    private let redis: ReadModelRedis
    private let logger: Logger
    private let partitionOfLog: [String: Int]
    private let projectionDelay: Metrics.Timer

    /// The histogram of the delay from an event's append (its change-log entry's id is Redis's
    /// clock then) to when queries saw it (Redis's clock after its apply; see
    /// `recordProjectionDelays`): the read-model lag a query sees, for every event.
    public static let projectionDelayLabel = "threadweave_rmu_projection_delay_seconds"
    /// Its buckets: fine up to the 20 ms lag target, then coarse up to a claim after a worker died.
    public static let projectionDelayBuckets: [Duration] =
        [1, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 250, 500, 1000, 2500, 10_000, 30_000, 60_000].map { .milliseconds($0) }

    public init(
        pool: RedisConnectionPool, layout: KeyLayout, configuration: Configuration, logger: Logger,
        metricsFactory: (any MetricsFactory)? = nil
    ) {
        self.pool = pool
        self.layout = layout
        self.configuration = configuration
        self.logger = logger
        self.projector = Projector(redis: pool, layout: layout, logger: logger)
        self.monitor = ConsumerGroupMonitor(redis: pool, layout: layout, metricsFactory: metricsFactory)
        self.redis = ReadModelRedis(pool, logger: logger)
        self.partitionOfLog = Dictionary(uniqueKeysWithValues: layout.allPartitions.map { (layout.changeLog(partition: $0), $0) })
        self.projectionDelay = Metrics.Timer(label: Self.projectionDelayLabel, factory: metricsFactory ?? MetricsSystem.factory)
    }

    /// The event loop the consuming loops and their blocking connections run on. In `serve` the
    /// process's loops also run every HTTP request; a reply to the worker arriving there waited
    /// for the loop's batch of request work, doubling the lag under load. One thread for the
    /// process, never shut down, like NIO's own singleton: a loop per run, shut down at its end,
    /// raced the pool's shutdown, which may still be closing a connection of that loop.
    private static let readLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    public func run() async throws {
        logger.info("read-model worker starting", metadata: ["consumer": "\(configuration.consumerName)"])
        try await prepare()
        let logGroups = try await readGroups()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.refreshGaugesPeriodically() }
            for logs in logGroups {
                group.addTask { await self.consumeUntilStopped(logs, on: Self.readLoops.next()) }
            }
            for _ in logGroups { await group.next() }
            group.cancelAll()
        }
        logger.info("read-model worker stopped", metadata: ["consumer": "\(configuration.consumerName)"])
    }

    /// The change logs one blocking XREADGROUP may read together: all of them
    /// on a single node; in a Redis Cluster each alone, since a command naming
    /// keys of several slots is refused (`CROSSSLOT`), so the worker then
    /// holds one blocking connection per partition, on the node serving it.
    private func readGroups() async throws(ReadModelError) -> [[String]] {
        do {
            return try await pool.keyGroupsForOneCommand(layout.allPartitions.map { layout.changeLog(partition: $0) })
        } catch {
            throw ReadModelError(redisError: error, command: "CLUSTER SHARDS")
        }
    }

    /// Reads, projects and acknowledges `logs` until stopping, reconnecting
    /// (to the node that serves them now) when the blocking connection fails.
    /// The connections are on `loop`, and so is this loop's task.
    private func consumeUntilStopped(_ logs: [String], on loop: any EventLoop) async {
        var machine = WorkerStateMachine(
            configuration: .init(
                maximumDeliveries: configuration.maximumDeliveries, claimInterval: configuration.claimInterval,
                batchSize: configuration.batchSize, gatherPause: configuration.gatherPause))
        while !machine.isStopping, !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                try await pool.withDedicatedConnection(forKey: logs[0], on: loop) { connection in
                    var others: [DedicatedRedisConnection] = []
                    defer { for other in others { other.release() } }
                    if logs.count > 1 {
                        for _ in 1..<max(1, configuration.applyConnections) {
                            others.append(try await pool.dedicatedConnection(forKey: logs[0], on: loop))
                        }
                    }
                    try await withTaskExecutorPreference(connection.taskExecutor) {
                        try await consume(
                            logs, readingWith: connection, applyingOn: [connection] + others.map(\.connection), machine: &machine)
                    }
                }
            } catch {
                if Task.isCancelled { break }
                progress.record()
                // The blocking connection broke (Redis restarted, a failover, a slot moved): open another after a pause.
                logger.warning("read-model worker lost its connection; reconnecting", metadata: ["error": "\(error)"])
                await pool.refreshTopology()
                try? await Task.sleep(for: configuration.retryPause)
            }
        }
    }

    /// Loads the library and creates the consumer groups if set-up has not.
    private func prepare() async throws(ReadModelError) {
        try await redis.loadLibrary()
        do {
            _ = try await StoreSetup.createConsumerGroups(on: pool, layout: layout)
        } catch {
            throw ReadModelError(error.code == .unavailable ? .unavailable : .unexpectedReply, "consumer groups could not be created", underlying: error)
        }
    }

    /// Returns once stopping; throws when the blocking connection fails.
    ///
    /// A batch's settlement (its XACKs, any dead letters) goes out in front of
    /// the next XREADGROUP, on the same connection: one round trip per batch
    /// instead of two, which is read-model lag under load. Should the
    /// connection break in between, those entries stay pending and are
    /// claimed and applied again (a duplicate, which changes nothing).
    private func consume(
        _ logs: [String], readingWith connection: RedisConnection, applyingOn connections: [RedisConnection],
        machine: inout WorkerStateMachine
    ) async throws {
        var unsent: [RedisCommand] = []
        // The same for every round: built and formatted once (some 140 arguments).
        let readCommand = try RedisCommand(
            ["XREADGROUP", "GROUP", StoreSetup.consumerGroup, configuration.consumerName,
             "COUNT", String(configuration.batchSize), "BLOCK", String(configuration.block.milliseconds), "STREAMS"]
                + logs + Array(repeating: ">", count: logs.count)
        ).prepared()
        while true {
            progress.record()
            if Task.isShuttingDownGracefully || Task.isCancelled { machine.requestStop() }
            do {
                switch machine.nextStep(now: .now) {
                case .stop:
                    _ = try await redis.pipeline(unsent)
                    return
                case .claimStale:
                    _ = try await redis.pipeline(unsent)
                    unsent = []
                    try await claimStale(logs, with: machine)
                case .pause(let duration):
                    await connection.taskExecutor.sleep(for: duration)
                case .readNew:
                    let entries = try await readNew(with: readCommand, on: connection, settling: unsent)
                    machine.readReturned(entries.count, now: .now)
                    // A batch in hand is finished even during a graceful shutdown.
                    unsent = await project(entries, with: machine, firstRoundOn: connections)
                }
            } catch let error as RedisError {
                throw error
            } catch {
                if Task.isCancelled { return }
                logger.warning("read-model round failed; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: configuration.retryPause)
            }
        }
    }

    /// Takes over entries idle longer than the threshold from any consumer
    /// (a dead one, or this one's previous run) and processes them. Returns
    /// how many entries were claimed.
    @discardableResult
    public func claimStale() async throws(ReadModelError) -> Int {
        try await claimStale(
            layout.allPartitions.map { layout.changeLog(partition: $0) },
            with: WorkerStateMachine(configuration: .init(maximumDeliveries: configuration.maximumDeliveries)))
    }

    @discardableResult
    private func claimStale(_ logs: [String], with machine: WorkerStateMachine) async throws(ReadModelError) -> Int {
        let partitions = logs.compactMap { log in partitionOfLog[log].map { (log: log, partition: $0) } }
        // Every log's first page in one pipeline: nearly always none holds entries idle that long,
        // and 64 round trips one after another held this worker's reads up for as long.
        let firstPages = try await redis.pipeline(partitions.map { autoclaim(in: $0.log, from: "0-0") })
        var claimed = 0
        for ((log, partition), firstPage) in zip(partitions, firstPages) {
            var page = firstPage
            while true {
                guard let parts = page.array, parts.count >= 2, let next = parts[0].string, let rawEntries = parts[1].array
                else { throw ReadModelError.unexpected(page, in: "XAUTOCLAIM") }
                var entries = StreamReply.entries(rawEntries, partition: partition)
                if !entries.isEmpty {
                    let counts = try await deliveryCounts(in: log, from: entries[0].id, through: entries[entries.count - 1].id)
                    for index in entries.indices { entries[index].deliveryCount = counts[entries[index].id] ?? 1 }
                    claimed += entries.count
                    logger.notice("claimed stale entries", metadata: ["partition": "\(partition)", "count": "\(entries.count)"])
                    try await process(entries, with: machine)
                }
                if next == "0-0" { break }
                page = try await redis.send(autoclaim(in: log, from: next))
            }
        }
        return claimed
    }

    /// Takes over up to a batch of `log`'s entries idle past the threshold, from `cursor` on.
    private func autoclaim(in log: String, from cursor: String) -> RedisCommand {
        RedisCommand(
            "XAUTOCLAIM", log, StoreSetup.consumerGroup, configuration.consumerName,
            String(configuration.claimIdleThreshold.milliseconds), cursor, "COUNT", String(configuration.batchSize))
    }

    private func deliveryCounts(in log: String, from first: String, through last: String) async throws(ReadModelError) -> [String: Int] {
        let reply = try await redis.send(
            RedisCommand(
                "XPENDING", log, StoreSetup.consumerGroup, first, last, String(configuration.batchSize), configuration.consumerName))
        var counts: [String: Int] = [:]
        for item in reply.array ?? [] {
            guard let fields = item.array, fields.count >= 4, let id = fields[0].string, let count = fields[3].int else { continue }
            counts[id] = count
        }
        return counts
    }

    /// Sends `settlement` (the last batch's) and the next XREADGROUP together.
    private func readNew(
        with command: RedisCommand, on connection: RedisConnection, settling settlement: [RedisCommand]
    ) async throws -> [DeliveredEntry] {
        // Not cancellable mid-read: the reply's entries would be pending with nobody to process them.
        let replies = try await connection.pipeline(settlement + [command], timeout: configuration.block + connection.configuration.commandTimeout)
        for case .failure(let error) in replies.dropLast() {
            logger.warning("a batch was not settled; its entries stay pending until claimed", metadata: ["error": "\(error)"])
        }
        guard let streams = try replies[replies.count - 1].get().array else { return [] }
        var entries: [DeliveredEntry] = []
        for stream in streams {
            guard let pair = stream.array, pair.count == 2, let name = pair[0].string, let partition = partitionOfLog[name],
                let rawEntries = pair[1].array
            else { continue }
            entries += StreamReply.entries(rawEntries, partition: partition)
        }
        return entries
    }

    private func process(_ entries: [DeliveredEntry], with machine: WorkerStateMachine) async throws(ReadModelError) {
        _ = try await redis.pipeline(await project(entries, with: machine))
    }

    /// Projects a batch and answers the commands that settle it: XACK what
    /// was projected, dead-letter what never can be. `connections`: the one the
    /// batch was read on and its companions, which serve its keys; the
    /// projector's first round goes there.
    private func project(
        _ entries: [DeliveredEntry], with machine: WorkerStateMachine, firstRoundOn connections: [RedisConnection] = []
    ) async -> [RedisCommand] {
        guard !entries.isEmpty else { return [] }
        let plan = machine.plan(entries)
        let outcomes = await projector.apply(plan.projections.map { ($0.threadId, $0.event) }, firstRoundOn: connections)
        for case (let threadId, .failure(let error)) in outcomes {
            logger.warning("thread not projected; its entries stay pending", metadata: ["thread": "\(threadId)", "error": "\(error)"])
        }
        let settlement = machine.settle(plan, outcomes: outcomes)
        recordProjectionDelays(settlement, outcomes)
        var commands: [RedisCommand] = []
        for deadLetter in settlement.deadLetters {
            logger.error(
                "dead-lettering a change-log entry",
                metadata: ["partition": "\(deadLetter.entry.partition)", "id": "\(deadLetter.entry.id)", "reason": "\(deadLetter.reason)"])
            commands.append(deadLetterCommand(deadLetter))
        }
        for (partition, ids) in settlement.acknowledgements {
            commands.append(RedisCommand(["XACK", layout.changeLog(partition: partition), StoreSetup.consumerGroup] + ids))
        }
        return commands
    }

    /// One delay per event projected: from its append (its change-log entry's
    /// id, Redis's clock) to when queries saw it: Redis's clock right after a
    /// first round's applies, else (a thread that went through the pool) this
    /// worker's clock once it was done, which across machines includes their skew.
    private func recordProjectionDelays(
        _ settlement: WorkerStateMachine.Settlement, _ outcomes: [ThreadID: Result<Projector.Report, ReadModelError>]
    ) {
        // The id holds the append's millisecond, not its instant: each delay is up to 1 ms long.
        let now = Date().timeIntervalSince1970 * 1000
        for projection in settlement.projected {
            guard let appended = StreamID(projection.entry.id)?.milliseconds else { continue }
            let appliedBy = try? outcomes[projection.threadId]?.get().appliedBy
            projectionDelay.recordMilliseconds(max(0, (appliedBy ?? now) - Double(appended)))
        }
    }

    private func deadLetterCommand(_ deadLetter: WorkerStateMachine.DeadLetter) -> RedisCommand {
        let partition = deadLetter.entry.partition
        return .fcall(
            "tw_rm_dead_letter", keys: [layout.changeLog(partition: partition), layout.deadLetters(partition: partition)],
            binaryArguments: [Array(deadLetter.entry.id.utf8), Array(deadLetter.reason.utf8)]
                + deadLetter.entry.fields.map { $0.bytes ?? Array(($0.string ?? "").utf8) })
    }

    private func refreshGaugesPeriodically() async {
        while !Task.isCancelled {
            do {
                monitor.record(try await monitor.sample())
            } catch {
                logger.debug("consumer-group gauges not refreshed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: configuration.metricsInterval)
        }
    }
}

/// Parsing of stream entries as XREADGROUP and XAUTOCLAIM answer them.
enum StreamReply {
    static func entries(_ raw: [RedisValue], partition: Int) -> [DeliveredEntry] {
        raw.compactMap { entry in
            // Entries deleted while pending come back without fields: nothing to project.
            guard let pair = entry.array, pair.count == 2, let id = pair[0].string, let fields = pair[1].array else { return nil }
            return DeliveredEntry(partition: partition, id: id, fields: fields, deliveryCount: 1)
        }
    }
}

/// The time of a worker loop's last round, shared with its liveness probe.
public final class WorkerProgress: Sendable {
    private let lastRound = Mutex(ContinuousClock.now)

    public init() {}

    func record() {
        lastRound.withLock { $0 = .now }
    }

    /// True when the loop went round within `limit`.
    public func isLive(within limit: Duration) -> Bool {
        lastRound.withLock { .now - $0 <= limit }
    }
}
