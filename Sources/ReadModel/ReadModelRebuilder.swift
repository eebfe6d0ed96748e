import Foundation
public import EventStore
public import Logging
public import RedisClient
import ThreadDomain

/// `threadweave rebuild`: builds the next generation of the namespace's read
/// model from the thread streams beside the live one, switches readers to it
/// with one HSET of `<ns>:config`, then drops the old generation. Queries
/// never see an empty read model:
///
/// 1. `readModelNext = n+1`; wait until every process has read it
///    (`ReadModelLayouts.refreshInterval`, twice): from then on workers
///    project each event into both generations.
/// 2. Replay every thread stream into n+1 through the projector: the same
///    gated apply, so the workers' writes into n+1 meanwhile are duplicates or
///    close gaps, and n+1 ends complete.
/// 3. `readModel = n+1` (the switch), `readModelNext` removed; wait again
///    until every process reads n+1, then UNLINK generation n's keys.
///
/// Every generation keeps each key in its thread's or account's hash tag, so
/// Redis Cluster is served as before. A lock key (`SET NX PX`, renewed while
/// the rebuild runs) keeps two rebuilds of one namespace from interleaving;
/// a failed rebuild removes `readModelNext`, and the next one drops what it
/// left before building.
public struct ReadModelRebuilder: Sendable {
    public struct Report: Sendable, Hashable {
        /// The generation now live.
        public var generation = 0
        /// Keys of the old generation dropped after the switch.
        public var keysDropped = 0
        public var threads = 0
        public var events = 0
    }

    /// How far a rebuild has come: reported every `progressInterval` and once at the end.
    public struct Progress: Sendable, Hashable {
        public var threads: Int
        public var events: Int
        /// The events in every thread stream when the replay began (counted with XLEN).
        public var totalEvents: Int
        public var elapsed: Duration

        public var eventsPerSecond: Double {
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return seconds > 0 ? Double(events) / seconds : 0
        }

        /// At the rate so far; nil before any event.
        public var remaining: Duration? {
            guard eventsPerSecond > 0 else { return nil }
            return .seconds(Double(max(totalEvents - events, 0)) / eventsPerSecond)
        }
    }

    public static let progressInterval: Duration = .seconds(2)
    /// Threads replayed concurrently: enough to hide round trips, few enough
    /// that pages of events held at once stay small.
    static let threadsReplayedAtOnce = 16

    public let layout: KeyLayout
    private let redis: ReadModelRedis
    private let executor: any RedisCommandExecutor
    private let store: RedisEventStore
    private let logger: Logger
    private let lockTimeToLive: Duration
    private let scanCount = 1000
    private let pageSize = 1000

    public init(redis: any RedisCommandExecutor, layout: KeyLayout, logger: Logger, lockTimeToLive: Duration = .seconds(30)) {
        self.layout = layout
        self.redis = ReadModelRedis(redis, logger: logger)
        self.executor = redis
        self.store = RedisEventStore(redis: redis, layout: layout, logger: logger)
        self.logger = logger
        self.lockTimeToLive = lockTimeToLive
    }

    public func rebuild(progress: @escaping @Sendable (Progress) -> Void = { _ in }) async throws(ReadModelError) -> Report {
        let token = ULID.generate().rawValue
        let acquired = try await redis.send(
            RedisCommand("SET", layout.rebuildLock, token, "NX", "PX", String(lockTimeToLive.milliseconds)))
        guard !acquired.isNull else {
            throw ReadModelError(.locked, "another rebuild of namespace \(layout.namespace) is running (\(layout.rebuildLock) is held)")
        }
        let result: Result<Report, ReadModelError> = await withTaskGroup(of: Result<Report, ReadModelError>?.self) { group in
            group.addTask {
                // Renews the lock until the rebuild is done (then cancelled); reports a lost lock.
                while !Task.isCancelled {
                    try? await Task.sleep(for: lockTimeToLive / 3)
                    if Task.isCancelled { return nil }
                    let renewed = try? await redis.send(
                        .fcall("tw_rm_renew_lock", keys: [layout.rebuildLock], arguments: [token, String(lockTimeToLive.milliseconds)]))
                    if renewed?.int == 0 {
                        return .failure(ReadModelError(.locked, "the rebuild lock was lost"))
                    }
                }
                return nil
            }
            group.addTask {
                do throws(ReadModelError) {
                    return .success(try await buildAndSwitch(progress: progress))
                } catch {
                    return .failure(error)
                }
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .failure(ReadModelError(.locked, "the rebuild lock was lost"))
        }
        _ = try? await redis.send(.fcall("tw_rm_release_lock", keys: [layout.rebuildLock], arguments: [token]))
        return try result.get()
    }

    private func buildAndSwitch(progress: @Sendable (Progress) -> Void) async throws(ReadModelError) -> Report {
        let live = try await ReadModelLayouts.generations(of: layout, redis: redis).live
        let next = layout.generation(live + 1)
        var report = Report(generation: next.readModelGeneration)
        _ = try await drop(next)
        try await redis.send(RedisCommand("HSET", layout.config, ReadModelLayouts.nextField, String(next.readModelGeneration)))
        do {
            try await waitUntilEveryProcessReadTheConfig()
            try await replayEveryThread(into: next, report: &report, progress: progress)
        } catch {
            _ = try? await redis.send(RedisCommand("HDEL", layout.config, ReadModelLayouts.nextField))
            throw error
        }
        try await redis.send(RedisCommand("HSET", layout.config, ReadModelLayouts.liveField, String(next.readModelGeneration)))
        try await redis.send(RedisCommand("HDEL", layout.config, ReadModelLayouts.nextField))
        logger.info("read model switched", metadata: ["generation": "\(next.readModelGeneration)"])
        try await waitUntilEveryProcessReadTheConfig()
        report.keysDropped = try await drop(layout.generation(live))
        logger.info("old read model dropped", metadata: ["generation": "\(live)", "keys": "\(report.keysDropped)"])
        return report
    }

    private func waitUntilEveryProcessReadTheConfig() async throws(ReadModelError) {
        do {
            try await Task.sleep(for: ReadModelLayouts.refreshInterval * 2)
        } catch {
            throw ReadModelError(.unavailable, "the rebuild was cancelled")
        }
    }

    private func replayEveryThread(
        into target: KeyLayout, report: inout Report, progress: @Sendable (Progress) -> Void
    ) async throws(ReadModelError) {
        var totalEvents = 0
        try await scan(matching: layout.threadStreamPattern, type: "stream") { keys throws(ReadModelError) in
            totalEvents += try await redis.pipeline(keys.map { RedisCommand("XLEN", $0) }).reduce(0) { $0 + ($1.int ?? 0) }
        }
        let projector = Projector(redis: executor, layouts: .fixed(target), logger: logger)
        let started = ContinuousClock.now
        var lastReported = started
        var threads = 0, events = 0
        func current() -> Progress {
            Progress(threads: threads, events: events, totalEvents: totalEvents, elapsed: ContinuousClock.now - started)
        }
        try await scan(matching: layout.threadStreamPattern, type: "stream") { keys throws(ReadModelError) in
            let threadIds = keys.compactMap { $0.split(separator: ":").last.flatMap { ThreadID(String($0)) } }
            // Threads are independent: replaying several at once keeps Redis and both halves of the
            // work (reading, applying) busy instead of waiting on one thread's round trips.
            try await replay(threadIds, through: projector) { replayed in
                events += replayed
                threads += 1
                if ContinuousClock.now - lastReported >= Self.progressInterval {
                    lastReported = .now
                    progress(current())
                }
            }
        }
        progress(current())
        report.threads = threads
        report.events = events
        logger.info("read model rebuilt", metadata: ["threads": "\(threads)", "events": "\(events)", "generation": "\(target.readModelGeneration)"])
    }

    /// UNLINKs every read-model key of the layout's generation; answers how many.
    private func drop(_ generation: KeyLayout) async throws(ReadModelError) -> Int {
        var dropped = 0
        for pattern in generation.readModelKeyPatterns {
            try await scan(matching: pattern, type: nil) { keys throws(ReadModelError) in
                // One UNLINK per key: in a cluster, keys of several slots may not share a command.
                _ = try await redis.pipeline(keys.map { RedisCommand("UNLINK", $0) })
                dropped += keys.count
            }
        }
        return dropped
    }

    /// Replays the threads, at most `threadsReplayedAtOnce` at a time; `replayed`
    /// gets each thread's event count on this task. The first failure stops the rest.
    private func replay(
        _ threadIds: [ThreadID], through projector: Projector, replayed: (Int) -> Void
    ) async throws(ReadModelError) {
        let replayOne: @Sendable (ThreadID) async -> ReplayOutcome = { threadId in
            do throws(ReadModelError) {
                return ReplayOutcome(result: .success(try await self.replay(threadId, through: projector)))
            } catch {
                return ReplayOutcome(result: .failure(error))
            }
        }
        let failure = await withTaskGroup(of: ReplayOutcome.self, returning: ReadModelError?.self) { group in
            var waiting = threadIds[...]
            for threadId in waiting.prefix(Self.threadsReplayedAtOnce) { group.addTask { await replayOne(threadId) } }
            waiting = waiting.dropFirst(Self.threadsReplayedAtOnce)
            var failure: ReadModelError?
            for await outcome in group {
                switch outcome.result {
                case .success(let count): replayed(count)
                case .failure(let error):
                    failure = failure ?? error
                    group.cancelAll()
                }
                if failure == nil, let threadId = waiting.popFirst() { group.addTask { await replayOne(threadId) } }
            }
            return failure
        }
        if let failure { throw failure }
    }

    /// A child's answer as a named struct: Swift 6.3.1's optimiser miscompiles task-group
    /// children that return tuples (docs/compiler-bugs/task-group-tuple-result).
    private struct ReplayOutcome: Sendable {
        var result: Result<Int, ReadModelError>
    }

    private func replay(_ threadId: ThreadID, through projector: Projector) async throws(ReadModelError) -> Int {
        var after: Int64 = 0
        var replayed = 0
        while true {
            let events: [StoredEvent]
            do {
                events = try await store.storedEvents(of: threadId, after: after, limit: pageSize)
            } catch {
                throw ReadModelError(error.code == .unavailable ? .unavailable : .corruptData, "thread \(threadId) could not be read", underlying: error)
            }
            guard let last = events.last else { return replayed }
            _ = try await projector.apply(events, of: threadId)
            replayed += events.count
            after = last.version
        }
    }

    private func scan(
        matching pattern: String, type: String?, _ body: ([String]) async throws(ReadModelError) -> Void
    ) async throws(ReadModelError) {
        let primaries: [any RedisCommandExecutor]
        do {
            primaries = try await executor.primaryExecutors()
        } catch {
            throw ReadModelError(redisError: error, command: "CLUSTER SHARDS")
        }
        // In a cluster each primary holds the keys of its own slots: scan them all.
        for primary in primaries {
            let node = ReadModelRedis(primary, logger: logger)
            var cursor = "0"
            repeat {
                var command = RedisCommand("SCAN", cursor, "MATCH", pattern, "COUNT", String(scanCount))
                if let type {
                    command.append("TYPE")
                    command.append(type)
                }
                let reply = try await node.send(command)
                guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let keys = parts[1].array else {
                    throw ReadModelError.unexpected(reply, in: "SCAN")
                }
                cursor = next
                let names = keys.compactMap(\.string)
                if !names.isEmpty { try await body(names) }
            } while cursor != "0"
        }
    }
}
