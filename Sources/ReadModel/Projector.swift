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
        /// Redis's clock, in milliseconds since the epoch, read right after
        /// the thread's events were applied in a first round: queries saw
        /// them from then on. Nil when they went through the pool.
        public var appliedBy: Double?

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
    ///
    /// With `connections`, each of which must serve every key of the batch
    /// (the worker's own, on the node of the change logs it read), every
    /// thread's first round goes out on them, in a few pipelines of many
    /// threads spread over them: under load a batch holds an event or two of
    /// each of a hundred threads, and a round trip per thread cost more than
    /// the applies themselves. Only threads that need more (a gap to close,
    /// account indexes to update) or whose calls failed there (a slot that
    /// moved) go on, through the pool.
    public func apply(
        _ batch: [(threadId: ThreadID, event: StoredEvent)], firstRoundOn connections: [any RedisCommandExecutor] = []
    ) async -> [ThreadID: Result<Report, ReadModelError>] {
        var threadOrder: [ThreadID] = []
        var byThread: [ThreadID: [StoredEvent]] = [:]
        for item in batch {
            if byThread[item.threadId] == nil { threadOrder.append(item.threadId) }
            byThread[item.threadId, default: []].append(item.event)
        }
        var runs = threadOrder.map { ThreadRun(threadId: $0, events: Self.inVersionOrder(byThread[$0] ?? [])) }
        var results: [ThreadID: Result<Report, ReadModelError>] = [:]
        // While a rebuild builds the next generation, each thread goes the whole way on its own.
        if !connections.isEmpty, let targets = try? await layouts.targets(), targets.count == 1 {
            let round = await firstRound(runs, in: targets[0], on: connections)
            results = round.finished
            runs = round.unfinished
        }
        guard !runs.isEmpty else { return results }
        // The children return a named struct, not a `(ThreadID, Result)` tuple: Swift 6.3.1's
        // optimiser miscompiles a task-group child that returns a tuple from do/catch branches
        // (release builds crash or lose results; docs/compiler-bugs/task-group-tuple-result).
        return await withTaskGroup(of: ThreadOutcome.self) { group in
            for run in runs {
                group.addTask {
                    do throws(ReadModelError) {
                        let report =
                            if let first = run.firstReplies {
                                try await self.apply(run.events, of: run.threadId, in: first.layout, firstReplies: first.replies)
                            } else {
                                try await self.apply(inVersionOrder: run.events, of: run.threadId)
                            }
                        return ThreadOutcome(threadId: run.threadId, result: .success(report))
                    } catch {
                        return ThreadOutcome(threadId: run.threadId, result: .failure(error))
                    }
                }
            }
            for await outcome in group { results[outcome.threadId] = outcome.result }
            return results
        }
    }

    private struct ThreadOutcome: Sendable {
        var threadId: ThreadID
        var result: Result<Report, ReadModelError>
    }

    /// One thread's events of a batch, in version order, and the replies of
    /// a first round already sent for them.
    private struct ThreadRun: Sendable {
        var threadId: ThreadID
        var events: [StoredEvent]
        var firstReplies: (layout: KeyLayout, replies: [RedisValue])?
    }

    /// What a first round finished, and the runs it leaves to the pool.
    private struct FirstRound: Sendable {
        var finished: [ThreadID: Result<Report, ReadModelError>] = [:]
        var unfinished: [ThreadRun] = []
    }

    /// A first round's pipelines hold at most this many applies (a thread's
    /// run is never split): several go out at once, so Redis applies one while
    /// the next is encoded and the last one's replies are read, and a batch
    /// caught up after a stall does not wait for its last apply as a whole.
    /// 24 applies of a 60-character message are some 15 KB, under the 16 KB
    /// Redis reads from a client per pass of its loop: pipelines on different
    /// connections are all read, and applied, in one pass, where one
    /// connection's would take several.
    public static let applicationsPerFirstRoundPipeline = 24

    /// Sends the runs' applies on `connections`, in pipelines of a bounded
    /// size at the same time, dealt out in turn, and finishes the runs that
    /// need nothing more.
    private func firstRound(_ runs: [ThreadRun], in layout: KeyLayout, on connections: [any RedisCommandExecutor]) async -> FirstRound {
        var chunks: [[ThreadRun]] = [[]]
        var applications = 0
        for run in runs {
            if applications > 0, applications + run.events.count > Self.applicationsPerFirstRoundPipeline {
                chunks.append([])
                applications = 0
            }
            chunks[chunks.count - 1].append(run)
            applications += run.events.count
        }
        if chunks.count == 1 { return await firstRoundPipeline(runs, in: layout, on: connections[0]) }
        return await withTaskGroup(of: FirstRound.self) { group in
            for (index, chunk) in chunks.enumerated() {
                let connection = connections[index % connections.count]
                group.addTask { await self.firstRoundPipeline(chunk, in: layout, on: connection) }
            }
            var round = FirstRound()
            for await part in group {
                round.finished.merge(part.finished) { first, _ in first }
                round.unfinished += part.unfinished
            }
            return round
        }
    }

    /// One pipeline of a first round. Should it fail as a whole, its runs are
    /// left to the pool as they came.
    private func firstRoundPipeline(_ runs: [ThreadRun], in layout: KeyLayout, on connection: any RedisCommandExecutor) async -> FirstRound {
        var commands: [RedisCommand] = []
        for run in runs {
            for (index, event) in run.events.enumerated() {
                commands.append(applyCommand(event, of: run.threadId, reportingOutbox: index == run.events.count - 1, in: layout))
            }
        }
        // Redis runs a connection's commands in order: its clock after the
        // applies is when queries began to see them, on the clock that
        // stamped the change-log entries (the lag, free of this machine's skew).
        commands.append(Self.redisClock)
        guard let replies = try? await ReadModelRedis(connection, logger: logger).pipelineResults(commands) else {
            return FirstRound(unfinished: runs)
        }
        let appliedBy = try? Self.milliseconds(ofTime: replies[replies.count - 1].get())
        var round = FirstRound()
        var offset = 0
        for var run in runs {
            let mine = replies[offset..<offset + run.events.count]
            offset += run.events.count
            // A server error (a moved slot, a missing library): the thread goes again through the pool.
            guard let values = try? mine.map({ try $0.get() }) else {
                round.unfinished.append(run)
                continue
            }
            run.firstReplies = (layout, values)
            if Self.needsMoreRoundTrips(values) {
                round.unfinished.append(run)
                continue
            }
            do throws(ReadModelError) {
                var report = try await apply(run.events, of: run.threadId, in: layout, firstReplies: values)
                report.appliedBy = appliedBy
                round.finished[run.threadId] = .success(report)
            } catch {
                round.finished[run.threadId] = .failure(error)
            }
        }
        return round
    }

    private static let redisClock = RedisCommand("TIME")

    /// A TIME reply (seconds, microseconds) in milliseconds since the epoch.
    private static func milliseconds(ofTime reply: RedisValue) -> Double? {
        guard let parts = reply.array, parts.count == 2, let seconds = parts[0].string.flatMap(Double.init),
            let microseconds = parts[1].string.flatMap(Double.init)
        else { return nil }
        return seconds * 1000 + microseconds / 1000
    }

    /// Whether replies to a thread's applies leave a gap to close or account
    /// operations to carry out (only the last apply reports the outbox).
    private static func needsMoreRoundTrips(_ replies: [RedisValue]) -> Bool {
        replies.contains { reply in
            switch try? ApplyOutcome(reply) {
            case .gap: true
            case .applied(_, let outbox), .duplicate(_, let outbox): !outbox.isEmpty
            case .rejected, nil: false
            }
        }
    }

    /// Each version once, in order.
    private static func inVersionOrder(_ events: [StoredEvent]) -> [StoredEvent] {
        var byVersion: [Int64: StoredEvent] = [:]
        for event in events { byVersion[event.version] = event }
        return byVersion.keys.sorted().compactMap { byVersion[$0] }
    }

    /// Applies events of one thread, in any order and with repeats, then
    /// carries out the account-index operations the thread owes.
    public func apply(_ events: [StoredEvent], of threadId: ThreadID) async throws(ReadModelError) -> Report {
        try await apply(inVersionOrder: Self.inVersionOrder(events), of: threadId)
    }

    /// `apply(_:of:)` of events already each version once, in order.
    private func apply(inVersionOrder events: [StoredEvent], of threadId: ThreadID) async throws(ReadModelError) -> Report {
        // While a rebuild builds the next generation, it gets every event too; the live one's report counts.
        let targets = try await layouts.targets()
        let report = try await apply(events, of: threadId, in: targets[0])
        for layout in targets.dropFirst() { _ = try await apply(events, of: threadId, in: layout) }
        return report
    }

    /// `events`: each version once, in order. `firstReplies`: the replies of
    /// the first round of them, already sent.
    private func apply(
        _ events: [StoredEvent], of threadId: ThreadID, in layout: KeyLayout, firstReplies: [RedisValue]? = nil
    ) async throws(ReadModelError) -> Report {
        var pending = events
        var report = Report()
        var owed: [RedisValue] = []
        var repliesInHand = firstReplies

        while !pending.isEmpty {
            // One pipeline for the whole run: the server applies them in order;
            // after a gap every later one gaps too, and is sent again once closed.
            let replies: [RedisValue]
            if let inHand = repliesInHand {
                replies = inHand
                repliesInHand = nil
            } else {
                replies = try await redis.pipeline(
                    pending.enumerated().map { index, event in
                        applyCommand(event, of: threadId, reportingOutbox: index == pending.count - 1, in: layout)
                    })
            }
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
