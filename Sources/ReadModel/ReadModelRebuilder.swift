import Foundation
public import EventStore
public import Logging
public import RedisClient
import ThreadDomain

/// `threadweave rebuild`: drops the namespace's read model (thread views and
/// account indexes) and replays every thread stream through the projector —
/// the same gated apply the workers use, so workers may keep running: whatever
/// they write meanwhile is either replayed over or a duplicate.
///
/// A lock key (`SET NX PX`, renewed while the rebuild runs) keeps two
/// rebuilds of one namespace from interleaving.
public struct ReadModelRebuilder: Sendable {
    public struct Report: Sendable, Hashable {
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

    public let layout: KeyLayout
    private let redis: ReadModelRedis
    private let projector: Projector
    private let store: RedisEventStore
    private let logger: Logger
    private let lockTimeToLive: Duration
    private let scanCount = 1000
    private let pageSize = 1000

    public init(redis: any RedisCommandExecutor, layout: KeyLayout, logger: Logger, lockTimeToLive: Duration = .seconds(30)) {
        self.layout = layout
        self.redis = ReadModelRedis(redis, logger: logger)
        self.projector = Projector(redis: redis, layout: layout, logger: logger)
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
                    return .success(try await dropAndReplay(progress: progress))
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

    private func dropAndReplay(progress: @Sendable (Progress) -> Void) async throws(ReadModelError) -> Report {
        var report = Report()
        var totalEvents = 0
        try await scan(matching: layout.threadStreamPattern, type: "stream") { keys throws(ReadModelError) in
            totalEvents += try await redis.pipeline(keys.map { RedisCommand("XLEN", $0) }).reduce(0) { $0 + ($1.int ?? 0) }
        }
        for pattern in layout.readModelKeyPatterns {
            try await scan(matching: pattern, type: nil) { keys throws(ReadModelError) in
                try await redis.send(RedisCommand(["UNLINK"] + keys))
                report.keysDropped += keys.count
            }
        }
        logger.info("read model dropped", metadata: ["keys": "\(report.keysDropped)"])
        let started = ContinuousClock.now
        var lastReported = started
        func current() -> Progress {
            Progress(threads: report.threads, events: report.events, totalEvents: totalEvents, elapsed: ContinuousClock.now - started)
        }
        try await scan(matching: layout.threadStreamPattern, type: "stream") { keys throws(ReadModelError) in
            for key in keys {
                guard let threadId = key.split(separator: ":").last.flatMap({ ThreadID(String($0)) }) else { continue }
                report.events += try await replay(threadId)
                report.threads += 1
                if ContinuousClock.now - lastReported >= Self.progressInterval {
                    lastReported = .now
                    progress(current())
                }
            }
        }
        progress(current())
        logger.info("read model rebuilt", metadata: ["threads": "\(report.threads)", "events": "\(report.events)"])
        return report
    }

    private func replay(_ threadId: ThreadID) async throws(ReadModelError) -> Int {
        var after: Int64 = 0
        var replayed = 0
        while true {
            let events: [RecordedEvent]
            do {
                events = try await store.events(of: threadId, after: after, limit: pageSize)
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
        var cursor = "0"
        repeat {
            var command = RedisCommand("SCAN", cursor, "MATCH", pattern, "COUNT", String(scanCount))
            if let type {
                command.append("TYPE")
                command.append(type)
            }
            let reply = try await redis.send(command)
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let keys = parts[1].array else {
                throw ReadModelError.unexpected(reply, in: "SCAN")
            }
            cursor = next
            let names = keys.compactMap(\.string)
            if !names.isEmpty { try await body(names) }
        } while cursor != "0"
    }
}
