public import EventStore
import Foundation
public import Logging
public import ThreadDomain

/// Runs commands against threads: load, decide, append with the loaded
/// version as the expected one; on a conflict reload only what was missed,
/// decide again and retry (bounded, jittered). Commands of this process for
/// one thread are group-committed (`GroupCommitQueues`): one batch in flight
/// per thread, the commands that queued meanwhile decided together and
/// appended in one `tw_append_batch`.
public struct CommandRunner: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Decide-and-append rounds before answering `conflict`.
        public var maximumAttempts: Int = 30
        /// Upper bound of the random pause before a retry grows to this.
        public var maximumBackoff: Duration = .milliseconds(100)
        /// A snapshot is written each time the version crosses a multiple of this.
        /// Small, because decoding the events after the snapshot is most of a
        /// command's client-side cost (`make bench`: 100 → 16 took one writer
        /// from 2.5 ms to 0.8 ms per command).
        public var snapshotInterval: Int64 = 16
        /// A snapshot holds every participant, an event holds a few: a thread
        /// of 10,000 participants snapshotted every 16 versions spends more
        /// encoding its snapshots than a cold load would spend replaying.
        /// So the interval grows with the participants, one version per
        /// `participantsPerSnapshotVersion` of them, and a snapshot's cost per
        /// event stays about the same whatever the thread's size.
        public var participantsPerSnapshotVersion: Int = 8
        public var idempotencyTimeToLiveSeconds: Int = 86_400
        /// Threads whose decision state the process keeps between commands
        /// (`ThreadStateCache`); 0 turns the cache off.
        public var cachedThreads: Int = 10_000
        /// The most commands of one thread decided and appended together.
        public var maximumBatch: Int = 128
        /// How long a command may wait behind its thread's batch in flight
        /// before it answers `unavailable`: the Redis command timeout, so a
        /// stalled Redis costs every caller at most one timeout.
        public var queueWaitLimit: Duration = .seconds(5)

        public init() {}

        /// The versions between two snapshots of a thread in `state`.
        func snapshotInterval(of state: ThreadState) -> Int64 {
            let participants = state.administratorIds.count + state.memberIds.count
            return max(snapshotInterval, Int64(participants / max(participantsPerSnapshotVersion, 1)))
        }
    }

    public let store: any EventStore
    public let configuration: Configuration
    private let logger: Logger
    private let now: @Sendable () -> Int64
    private let cache: ThreadStateCache
    private let groupCommit: GroupCommit
    private let random = RandomReserve()

    public init(
        store: any EventStore, configuration: Configuration = .init(), logger: Logger,
        now: @escaping @Sendable () -> Int64 = CommandRunner.currentTimeMilliseconds
    ) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.now = now
        self.cache = ThreadStateCache(capacity: configuration.cachedThreads)
        self.groupCommit = GroupCommit(maximumBatch: configuration.maximumBatch, waitLimit: configuration.queueWaitLimit)
    }

    /// Wall-clock unix milliseconds: the `at` of recorded events.
    @Sendable public static func currentTimeMilliseconds() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000)
    }

    public func run(_ request: CommandRequest) async throws(FunctionError) -> CommandOutcome {
        // A retry answers with its first outcome before anything is decided
        // (a refusal now, e.g. `thread_exists`, would not be that outcome).
        if let key = request.idempotencyKey {
            let loaded = try await load(request.threadId, since: cache.state(of: request.threadId), messageIds: [], idempotencyKey: key)
            if let previous = loaded.previousOutcome {
                return try replay(previous, of: request)
            }
        }
        var random = random
        let member = BatchMember(request: request, commandId: request.idempotencyKey ?? ULID.generate(using: &random).rawValue)
        switch await groupCommit.turn(for: member) {
        case .answered(let result):
            return try result.get()
        case .lead(let batch):
            let outcome = await runBatch(batch.map(\.member))
            return try groupCommit.finish(batch, outcome).get()
        }
    }

    /// Decides and appends one batch of one thread's commands: one load, then
    /// decide-and-append rounds until it is in, refused, or out of attempts.
    private func runBatch(_ members: [BatchMember]) async -> BatchOutcome {
        let threadId = members[0].request.threadId
        var seen: Set<MessageID> = []
        let referenced = members.flatMap(\.request.command.referencedMessageIds).filter { seen.insert($0).inserted }
        var answers = [Result<CommandOutcome, FunctionError>?](repeating: nil, count: members.count)
        var open = Array(members.indices)
        var loaded: LoadedThread
        // Posts to a thread whose current state this process holds are decided on it
        // without a load: their append confirms the version and that their ids are new.
        // A refusal decided so is not trusted: it is decided again on a load.
        var decidedOnHeldState = false
        if members.allSatisfy(\.request.command.isPostWithoutReplies), let held = cache.currentState(of: threadId) {
            loaded = LoadedThread(state: held, eventsReplayed: 0, previousOutcome: nil)
            decidedOnHeldState = true
        } else {
            do {
                loaded = try await load(threadId, since: cache.state(of: threadId), messageIds: referenced, idempotencyKey: nil)
            } catch {
                return BatchOutcome(answers: members.map { _ in .failure(error) }, failure: error)
            }
        }
        var attempt = 1
        var refusedWithKeys: [Int] = []
        while !open.isEmpty {
            let at = now()
            let decision = BatchDecision(
                open.map { BatchDecision.Command(command: members[$0].request.command, actor: members[$0].request.actor, idempotencyKey: members[$0].request.idempotencyKey) },
                commandIds: open.map { members[$0].commandId }, on: loaded.state, at: at)
            if decidedOnHeldState, decision.verdicts.contains(where: \.isRefusal) {
                decidedOnHeldState = false
                do {
                    loaded = try await load(threadId, since: loaded.state, messageIds: referenced, idempotencyKey: nil)
                } catch {
                    return failed(answers, with: error)
                }
                continue
            }
            var appended: [AppendRequest.Command] = []
            var appendedMembers: [Int] = []
            for (position, verdict) in decision.verdicts.enumerated() {
                guard case .accepted(let events, _) = verdict else { continue }
                let request = members[open[position]].request
                appended.append(
                    AppendRequest.Command(
                        commandId: members[open[position]].commandId, actor: request.actor, events: events,
                        idempotency: request.idempotencyKey.map { _ in
                            AppendRequest.Idempotency(
                                fingerprint: request.fingerprint, result: request.result,
                                timeToLiveSeconds: configuration.idempotencyTimeToLiveSeconds)
                        }))
                appendedMembers.append(open[position])
            }
            guard !appended.isEmpty else {
                cache.remember(loaded.state)
                refusedWithKeys += answer(decision, open: open, members: members, attempt: attempt, landedAfter: 0, into: &answers)
                break
            }
            var append = AppendRequest(threadId: threadId, expectedVersion: loaded.version, commands: appended, at: at)
            append.mayFollowMessages = append.addsMessagesOnly
            // Crossing a snapshot interval: the snapshot goes in with the append (if it lands
            // where it was decided), so no answer waits on a call of its own.
            if let state = decision.state {
                let interval = configuration.snapshotInterval(of: state)
                if state.version / interval > loaded.version / interval { append.snapshot = state }
            }
            let outcome: AppendOutcome
            do {
                outcome = try await store.append(append)
            } catch {
                return failed(answers, with: FunctionError(storeError: error))
            }
            switch outcome {
            case .appended(let version):
                // Landed after other processes' messages: the decision's state
                // lacks them, so it is neither cached nor snapshotted; what was
                // loaded still is a true state to load on from.
                let landedAfter = version - append.decidedVersion
                refusedWithKeys += answer(
                    decision, open: open, members: members, attempt: attempt, landedAfter: landedAfter, into: &answers)
                if landedAfter == 0, let state = decision.state {
                    cache.remember(state)
                } else {
                    cache.remember(loaded.state, isCurrent: false)
                }
                open = []
            case .duplicate(let previous, let command):
                // The key is in already (another process, or an earlier batch): answer
                // every member with that key from its record, send the rest again.
                let key = members[appendedMembers[command]].request.idempotencyKey
                for index in open where members[index].request.idempotencyKey == key {
                    answers[index] = Result { () throws(FunctionError) in try replay(previous, of: members[index].request) }
                }
                open.removeAll { members[$0].request.idempotencyKey == key }
            case .reused(let command):
                let index = appendedMembers[command]
                answers[index] = .failure(FunctionError(.idempotencyKeyReused, "the idempotency key was already used for a different request"))
                open.removeAll { $0 == index }
            case .conflict(let actualVersion):
                logger.debug(
                    "append conflict",
                    metadata: [
                        "thread": "\(threadId)", "expected": "\(loaded.version)", "actual": "\(actualVersion)",
                        "attempt": "\(attempt)", "batch": "\(appended.count)",
                    ])
                if decidedOnHeldState {
                    // Not contention: the held state was behind, or a message id is taken. Load and decide again.
                    decidedOnHeldState = false
                } else {
                    guard attempt < configuration.maximumAttempts else {
                        let failure = FunctionError(
                            .conflict, "the thread kept changing; \(configuration.maximumAttempts) attempts did not get the command in")
                        return failed(answers, with: failure)
                    }
                    attempt += 1
                    await backOff(attempt: attempt - 1)
                }
                // The stream behind what we hold (it was rebuilt or dropped): start over from the snapshot.
                let base = actualVersion >= loaded.version ? loaded.state : nil
                if base == nil { cache.forget(threadId) }
                do {
                    loaded = try await load(threadId, since: base, messageIds: referenced, idempotencyKey: nil)
                } catch {
                    return failed(answers, with: error)
                }
            }
        }
        // A retry that checked its key before the first try's append went in, and was then
        // decided after it (e.g. `message_exists`): its answer is the first outcome.
        // Members of the batch with the same key took that refusal as theirs too.
        for index in refusedWithKeys {
            let key = members[index].request.idempotencyKey
            guard let previous = try? await load(threadId, since: cache.state(of: threadId), messageIds: [], idempotencyKey: key).previousOutcome
            else { continue }
            for member in members.indices where members[member].request.idempotencyKey == key {
                let request = members[member].request
                answers[member] = Result { () throws(FunctionError) in try replay(previous, of: request) }
            }
        }
        return BatchOutcome(
            answers: answers.map { $0 ?? .failure(FunctionError(.internalError, "a command of the batch was not answered")) })
    }

    /// The batch failed as a whole: members not answered yet get `error`.
    private func failed(_ answers: [Result<CommandOutcome, FunctionError>?], with error: FunctionError) -> BatchOutcome {
        BatchOutcome(answers: answers.map { $0 ?? .failure(error) }, failure: error)
    }

    /// Answers the open members from a decision whose events are in (or that had none),
    /// `landedAfter` events later than decided (`AppendRequest.mayFollowMessages`).
    /// Answers the members refused that carry an idempotency key: their key may
    /// have gone in after they checked it, and then the refusal is not their answer.
    @discardableResult
    private func answer(
        _ decision: BatchDecision, open: [Int], members: [BatchMember], attempt: Int, landedAfter: Int64,
        into answers: inout [Result<CommandOutcome, FunctionError>?]
    ) -> [Int] {
        var refusedWithKeys: [Int] = []
        for (position, verdict) in decision.verdicts.enumerated() {
            let request = members[open[position]].request
            let version: Int64
            switch verdict {
            case .accepted(_, let lastVersion):
                version = lastVersion + landedAfter
            case .unchanged(let unchangedVersion):
                version = unchangedVersion
            case .refused(let error):
                answers[open[position]] = .failure(FunctionError(domainError: error))
                if request.idempotencyKey != nil { refusedWithKeys.append(open[position]) }
                continue
            case .sameKeyAs(let first):
                answers[open[position]] = answers[open[first]].map { result in
                    result.flatMap { outcome in
                        Result { () throws(FunctionError) in
                            try replay(
                                IdempotencyRecord(version: outcome.version, result: outcome.result, fingerprint: members[open[first]].request.fingerprint),
                                of: request)
                        }
                    }
                }
                continue
            }
            let events = decision.recordedEvents(
                of: position, commandId: members[open[position]].commandId, actor: request.actor, landedAfter: landedAfter)
            answers[open[position]] = .success(
                CommandOutcome(
                    threadId: request.threadId, version: version, events: events,
                    state: landedAfter == 0 ? decision.statesAfter[position] : nil,
                    result: request.result, isReplay: false, attempts: attempt))
        }
        return refusedWithKeys
    }

    private func load(
        _ threadId: ThreadID, since base: ThreadState?, messageIds: [MessageID], idempotencyKey: String?
    ) async throws(FunctionError) -> LoadedThread {
        do {
            return try await store.load(threadId, since: base, messageIds: messageIds, commandId: idempotencyKey)
        } catch {
            throw FunctionError(storeError: error)
        }
    }

    private func replay(_ previous: IdempotencyRecord, of request: CommandRequest) throws(FunctionError) -> CommandOutcome {
        guard previous.fingerprint == request.fingerprint else {
            throw FunctionError(.idempotencyKeyReused, "the idempotency key was already used for a different request")
        }
        return CommandOutcome(
            threadId: request.threadId, version: previous.version, events: [], state: nil,
            result: previous.result, isReplay: true, attempts: 0)
    }

    /// Full jitter: a random pause up to a bound that doubles per attempt.
    private func backOff(attempt: Int) async {
        let bound = min(Duration.milliseconds(1 << min(attempt, 10)), configuration.maximumBackoff)
        try? await Task.sleep(for: bound * Double.random(in: 0...1))
    }
}

public struct CommandRequest: Sendable, Hashable {
    public var threadId: ThreadID
    public var command: ThreadCommand
    public var actor: AccountID
    /// The client's `Idempotency-Key` (or body `commandId`) as the store keeps
    /// it, scoped by the actor (`scopedIdempotencyKey`); nil when it sent none.
    public var idempotencyKey: String?
    /// A digest of the request, to refuse a key reused for another request.
    public var fingerprint: String
    /// What to answer a retry with, kept beside the idempotency record.
    public var result: String

    public init(
        threadId: ThreadID, command: ThreadCommand, actor: AccountID, idempotencyKey: String? = nil,
        fingerprint: String = "", result: String = ""
    ) {
        self.threadId = threadId
        self.command = command
        self.actor = actor
        self.idempotencyKey = idempotencyKey
        self.fingerprint = fingerprint
        self.result = result
    }

    /// `<accountId>:<key>`: keys are the client's, so two accounts in one
    /// thread may pick the same one without answering each other's retries.
    public static func scopedIdempotencyKey(_ key: String, actor: AccountID) -> String { "\(actor.rawValue):\(key)" }
}

public struct CommandOutcome: Sendable, Hashable {
    public var threadId: ThreadID
    /// The thread's version after the command (unchanged for a no-op).
    public var version: Int64
    /// What this call appended; empty for a no-op or a replayed outcome.
    public var events: [RecordedEvent]
    /// The decision state after the command; nil for a replayed outcome, and
    /// for messages that landed after others' (the state lacks those).
    public var state: ThreadState?
    public var result: String
    /// True when the outcome is the stored first outcome of an idempotent retry.
    public var isReplay: Bool
    public var attempts: Int
}
