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
    /// order, different threads independently. One thread's failure does not
    /// hold up the others.
    ///
    /// The first pass is one pipeline for the whole batch: Redis applies the
    /// commands in the order sent (per node, on a cluster), so each thread's
    /// run goes in in version order, as it would alone, for one round trip
    /// instead of one per thread. What is left (a gap to close, account
    /// operations owed, a generation being rebuilt) goes on per thread.
    public func apply(_ batch: [(threadId: ThreadID, event: StoredEvent)]) async -> [ThreadID: Result<Report, ReadModelError>] {
        guard !batch.isEmpty else { return [:] }
        var threads: [ThreadID] = []
        var byThread: [ThreadID: [StoredEvent]] = [:]
        for item in batch {
            if byThread[item.threadId] == nil { threads.append(item.threadId) }
            byThread[item.threadId, default: []].append(item.event)
        }
        let runs = threads.map { (threadId: $0, events: Self.inVersionOrder(byThread[$0] ?? [])) }
        let firstPasses: [FirstPass]
        let targets: [KeyLayout]
        do throws(ReadModelError) {
            targets = try await layouts.targets()
            firstPasses = try await firstPass(runs, in: targets[0])
        } catch {
            return Dictionary(uniqueKeysWithValues: threads.map { ($0, .failure(error)) })
        }
        var results: [ThreadID: Result<Report, ReadModelError>] = [:]
        var unfinished: [FirstPass] = []
        for pass in firstPasses {
            if case .failure(let error) = pass.outcome {
                results[pass.threadId] = .failure(error)
            } else if pass.remaining.isEmpty, pass.owed.isEmpty, targets.count == 1, case .success(let report) = pass.outcome {
                results[pass.threadId] = .success(report)
            } else {
                unfinished.append(pass)
            }
        }
        guard !unfinished.isEmpty else { return results }
        // The children return a named struct, not a `(ThreadID, Result)` tuple: Swift 6.3.1's
        // optimiser miscompiles a task-group child that returns a tuple from do/catch branches
        // (release builds crash or lose results; docs/compiler-bugs/task-group-tuple-result).
        return await withTaskGroup(of: ThreadOutcome.self) { group in
            for pass in unfinished {
                group.addTask {
                    do throws(ReadModelError) {
                        return ThreadOutcome(threadId: pass.threadId, result: .success(try await self.finish(pass, targets: targets)))
                    } catch {
                        return ThreadOutcome(threadId: pass.threadId, result: .failure(error))
                    }
                }
            }
            for await outcome in group { results[outcome.threadId] = outcome.result }
            return results
        }
    }

    /// One thread's part of a batch's first pass.
    private struct FirstPass: Sendable {
        var threadId: ThreadID
        /// The thread's events in the batch, in version order.
        var events: [StoredEvent]
        /// What the pass applied, or the error that stopped the thread.
        var outcome: Result<Report, ReadModelError>
        /// From the first event that found a gap on: sent again once it is closed.
        var remaining: [StoredEvent]
        /// The account operations the thread owes after its last event.
        var owed: [RedisValue]
    }

    private func firstPass(
        _ runs: [(threadId: ThreadID, events: [StoredEvent])], in layout: KeyLayout
    ) async throws(ReadModelError) -> [FirstPass] {
        let commands = runs.flatMap { run in
            run.events.enumerated().map { index, event in
                applyCommand(event, of: run.threadId, reportingOutbox: index == run.events.count - 1, in: layout)
            }
        }
        var replies = try await redis.pipelineResults(commands)[...]
        var passes: [FirstPass] = []
        for run in runs {
            let threadReplies = replies.prefix(run.events.count)
            replies = replies.dropFirst(run.events.count)
            var pass = FirstPass(threadId: run.threadId, events: run.events, outcome: .success(Report()), remaining: [], owed: [])
            var report = Report()
            for (index, (event, reply)) in zip(run.events, threadReplies).enumerated() {
                let outcome: ApplyOutcome
                do throws(ReadModelError) {
                    outcome = try ApplyOutcome(reply.get())
                } catch {
                    pass.outcome = .failure(error)
                    break
                }
                if case .gap = outcome {
                    pass.remaining = Array(run.events[index...])
                    break
                }
                record(outcome, of: event, threadId: run.threadId, in: &report, owed: &pass.owed)
            }
            if case .success = pass.outcome { pass.outcome = .success(report) }
            passes.append(pass)
        }
        return passes
    }

    /// The rest of a thread's apply after the batch's first pass.
    private func finish(_ pass: FirstPass, targets: [KeyLayout]) async throws(ReadModelError) -> Report {
        var report = try pass.outcome.get()
        if pass.remaining.isEmpty {
            try await carryOutAccountOperations(pass.owed, of: pass.threadId, in: targets[0])
        } else {
            let rest = try await apply(pass.remaining, of: pass.threadId, in: targets[0])
            report.applied += rest.applied
            report.duplicates += rest.duplicates
            report.caughtUp += rest.caughtUp
            report.rejected.merge(rest.rejected) { first, _ in first }
        }
        // While a rebuild builds the next generation, it gets every event too; the live one's report counts.
        for layout in targets.dropFirst() { _ = try await apply(pass.events, of: pass.threadId, in: layout) }
        return report
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
        var pending = Self.inVersionOrder(events)
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
                if case .gap(let held) = outcome {
                    report.caughtUp += try await closeGap(of: threadId, from: held, through: event.version - 1, in: layout)
                    resumeAt = index
                    break
                }
                record(outcome, of: event, threadId: threadId, in: &report, owed: &owed)
            }
            pending = resumeAt.map { Array(pending[$0...]) } ?? []
        }
        try await carryOutAccountOperations(owed, of: threadId, in: layout)
        return report
    }

    /// Each version once, in order: a batch may repeat an event (a redelivery).
    private static func inVersionOrder(_ events: [StoredEvent]) -> [StoredEvent] {
        var byVersion: [Int64: StoredEvent] = [:]
        for event in events { byVersion[event.version] = event }
        return byVersion.keys.sorted().compactMap { byVersion[$0] }
    }

    /// Counts an apply's outcome other than a gap; an applied or duplicate
    /// one carries the account operations owed as of that event.
    private func record(_ outcome: ApplyOutcome, of event: StoredEvent, threadId: ThreadID, in report: inout Report, owed: inout [RedisValue]) {
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
        case .gap:
            break
        }
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
