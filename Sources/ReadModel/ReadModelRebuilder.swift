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

    public func rebuild() async throws(ReadModelError) -> Report {
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
                    return .success(try await dropAndReplay())
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

    private func dropAndReplay() async throws(ReadModelError) -> Report {
        var report = Report()
        for pattern in layout.readModelKeyPatterns {
            try await scan(matching: pattern, type: nil) { keys throws(ReadModelError) in
                try await redis.send(RedisCommand(["UNLINK"] + keys))
                report.keysDropped += keys.count
            }
        }
        logger.info("read model dropped", metadata: ["keys": "\(report.keysDropped)"])
        try await scan(matching: layout.threadStreamPattern, type: "stream") { keys throws(ReadModelError) in
            for key in keys {
                guard let threadId = key.split(separator: ":").last.flatMap({ ThreadID(String($0)) }) else { continue }
                report.events += try await replay(threadId)
                report.threads += 1
            }
        }
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
