public import EventStore
public import Logging
public import RedisClient
public import ThreadDomain

/// Applies recorded events to the read model of DESIGN §3 through
/// `tw_rm_apply`. Every write is version-gated on the server, so the projector
/// may see events in any order, more than once, from any number of workers:
/// a repeat is a `duplicate`, and a gap is closed from the thread stream.
/// The RMU worker and `rebuild` both go through here.
public struct Projector: Sendable {
    /// What one thread's apply did.
    public struct Report: Sendable, Hashable {
        public var applied = 0
        public var duplicates = 0
        /// Events read from the thread stream to close gaps (and applied).
        public var caughtUp = 0
        /// Events the read model refused for good (a corrupt stream), by version, with the reason.
        public var rejected: [Int64: String] = [:]

        public init() {}
    }

    public var layout: KeyLayout { layouts.base }
    private let layouts: ReadModelLayouts
    private let redis: ReadModelRedis
    private let store: RedisEventStore
    private let logger: Logger
    /// Events read per XRANGE while closing a gap.
    private let catchUpPageSize = 500

    /// A projector into the live read-model generation (it follows a `rebuild`'s switch).
    public init(redis: any RedisCommandExecutor, layout: KeyLayout, logger: Logger) {
        self.init(redis: redis, layouts: .live(layout, redis: ReadModelRedis(redis, logger: logger)), logger: logger)
    }

    init(redis: any RedisCommandExecutor, layouts: ReadModelLayouts, logger: Logger) {
        self.layouts = layouts
        self.redis = ReadModelRedis(redis, logger: logger)
        self.store = RedisEventStore(redis: redis, layout: layouts.base, logger: logger)
        self.logger = logger
    }

    /// Applies a batch that may span threads: each thread's events in version
    /// order, different threads concurrently. One thread's failure does not
    /// hold up the others.
    public func apply(_ batch: [(threadId: ThreadID, event: StoredEvent)]) async -> [ThreadID: Result<Report, ReadModelError>] {
        var byThread: [ThreadID: [StoredEvent]] = [:]
        for item in batch { byThread[item.threadId, default: []].append(item.event) }
        // The children return a named struct, not a `(ThreadID, Result)` tuple: Swift 6.3.1's
        // optimiser miscompiles a task-group child that returns a tuple from do/catch branches
        // (release builds crash or lose results; docs/compiler-bugs/task-group-tuple-result).
        return await withTaskGroup(of: ThreadOutcome.self) { group in
            for (threadId, events) in byThread {
                group.addTask {
                    do throws(ReadModelError) {
                        return ThreadOutcome(threadId: threadId, result: .success(try await self.apply(events, of: threadId)))
                    } catch {
                        return ThreadOutcome(threadId: threadId, result: .failure(error))
                    }
                }
            }
            var results: [ThreadID: Result<Report, ReadModelError>] = [:]
            for await outcome in group { results[outcome.threadId] = outcome.result }
            return results
        }
    }

    private struct ThreadOutcome: Sendable {
        var threadId: ThreadID
        var result: Result<Report, ReadModelError>
    }

    /// Applies events of one thread, in any order and with repeats, then
    /// carries out the account-index operations the thread owes.
    public func apply(_ events: [StoredEvent], of threadId: ThreadID) async throws(ReadModelError) -> Report {
        // While a rebuild builds the next generation, it gets every event too; the live one's report counts.
        let targets = try await layouts.targets()
        let report = try await apply(events, of: threadId, in: targets[0])
        for layout in targets.dropFirst() { _ = try await apply(events, of: threadId, in: layout) }
        return report
    }

    private func apply(_ events: [StoredEvent], of threadId: ThreadID, in layout: KeyLayout) async throws(ReadModelError) -> Report {
        var byVersion: [Int64: StoredEvent] = [:]
        for event in events { byVersion[event.version] = event }
        var pending = byVersion.keys.sorted().compactMap { byVersion[$0] }
        var report = Report()
        var owed: [RedisValue] = []

        while !pending.isEmpty {
            // One pipeline for the whole run: the server applies them in order;
            // after a gap every later one gaps too, and is sent again once closed.
            let replies = try await redis.pipeline(
                pending.enumerated().map { index, event in
                    applyCommand(event, of: threadId, reportingOutbox: index == pending.count - 1, in: layout)
                })
            var resumeAt: Int?
            for (index, (event, reply)) in zip(pending, replies).enumerated() {
                let outcome = try ApplyOutcome(reply)
                switch outcome {
                case .applied(_, let outbox):
                    report.applied += 1
                    owed = outbox
                case .duplicate(_, let outbox):
                    report.duplicates += 1
                    owed = outbox
                case .rejected(_, let reason):
                    report.rejected[event.version] = reason
                    logger.error(
                        "read model refused an event",
                        metadata: ["thread": "\(threadId)", "version": "\(event.version)", "reason": "\(reason)"])
                case .gap(let held):
                    report.caughtUp += try await closeGap(of: threadId, from: held, through: event.version - 1, in: layout)
                    resumeAt = index
                }
                if resumeAt != nil { break }
            }
            pending = resumeAt.map { Array(pending[$0...]) } ?? []
        }
        try await carryOutAccountOperations(owed, of: threadId, in: layout)
        return report
    }

    /// Reads the thread stream after `held` and applies it until the read
    /// model holds `target` (or more: another worker may be at it too).
    private func closeGap(
        of threadId: ThreadID, from held: Int64, through target: Int64, in layout: KeyLayout
    ) async throws(ReadModelError) -> Int {
        var held = held
        var applied = 0
        while held < target {
            let events: [StoredEvent]
            do {
                events = try await store.storedEvents(of: threadId, after: held, limit: min(catchUpPageSize, Int(target - held)))
            } catch {
                throw ReadModelError(
                    error.code == .unavailable ? .unavailable : .corruptData,
                    "thread \(threadId) could not be read to close a gap", underlying: error)
            }
            guard let first = events.first, first.version == held + 1 else {
                throw ReadModelError(
                    .unclosableGap, "thread \(threadId): the read model holds \(held), the stream has no version \(held + 1)")
            }
            let replies = try await redis.pipeline(events.map { applyCommand($0, of: threadId, reportingOutbox: false, in: layout) })
            for (event, reply) in zip(events, replies) {
                switch try ApplyOutcome(reply) {
                case .applied(let version, _):
                    held = version
                    applied += 1
                case .duplicate(let version, _):
                    held = max(held, version)
                case .gap(let version):
                    // Another writer of the read model cannot move it backwards; read on from where it is.
                    held = version
                case .rejected(_, let reason):
                    throw ReadModelError(
                        .corruptData, "thread \(threadId) version \(event.version) cannot be applied: \(reason)")
                }
            }
        }
        return applied
    }

    private func applyCommand(_ event: StoredEvent, of threadId: ThreadID, reportingOutbox: Bool, in layout: KeyLayout) -> RedisCommand {
        .fcall(
            "tw_rm_apply", keys: layout.readModelKeys(of: threadId),
            arguments: [
                threadId.rawValue, String(event.version), event.typeName, String(event.at), event.actor.rawValue,
                event.data, reportingOutbox ? "1" : "0",
            ])
    }

    /// Updates each owed account's index (gated by version on the server),
    /// then settles exactly the operations carried out.
    private func carryOutAccountOperations(
        _ owed: [RedisValue], of threadId: ThreadID, in layout: KeyLayout
    ) async throws(ReadModelError) {
        guard !owed.isEmpty else { return }
        var indexCommands: [RedisCommand] = []
        var settled: [(account: String, operation: String)] = []
        for (account, operation) in RedisValue.array(owed).pairs {
            guard let account = account.string, let operation = operation.string else { continue }
            settled.append((account, operation))
            let parts = operation.split(separator: "|").map(String.init)
            guard let accountId = AccountID(account), parts.count == 3 else {
                logger.warning("dropping a malformed account operation", metadata: ["thread": "\(threadId)"])
                continue
            }
            indexCommands.append(
                .fcall(
                    "tw_rm_index_account", keys: [layout.accountThreads(accountId), layout.accountThreadVersions(accountId)],
                    arguments: [threadId.rawValue, parts[0], parts[1], parts[2]]))
        }
        // Separate calls per account: each account's keys are a slot of their own.
        _ = try await redis.pipeline(indexCommands)
        // A big thread owes thousands: settle them in bounded calls.
        let settleCommands = stride(from: 0, to: settled.count, by: Self.settlePairsPerCall).map { first in
            RedisCommand.fcall(
                "tw_rm_settle", keys: [layout.accountOutbox(threadId)],
                arguments: settled[first..<min(first + Self.settlePairsPerCall, settled.count)].flatMap { [$0.account, $0.operation] })
        }
        _ = try await redis.pipeline(settleCommands)
    }

    private static let settlePairsPerCall = 500
}

/// A `tw_rm_apply` reply.
enum ApplyOutcome {
    case applied(version: Int64, outbox: [RedisValue])
    case duplicate(held: Int64, outbox: [RedisValue])
    case gap(held: Int64)
    case rejected(held: Int64, reason: String)

    init(_ reply: RedisValue) throws(ReadModelError) {
        guard let parts = reply.array, parts.count >= 2, let status = parts[0].string, let version = parts[1].int
        else { throw ReadModelError.unexpected(reply, in: "tw_rm_apply") }
        let held = Int64(version)
        switch status {
        case "applied": self = .applied(version: held, outbox: parts.count > 2 ? parts[2].array ?? [] : [])
        case "duplicate": self = .duplicate(held: held, outbox: parts.count > 2 ? parts[2].array ?? [] : [])
        case "gap": self = .gap(held: held)
        case "rejected": self = .rejected(held: held, reason: parts.count > 2 ? parts[2].string ?? "" : "")
        default: throw ReadModelError.unexpected(reply, in: "tw_rm_apply")
        }
    }
}
