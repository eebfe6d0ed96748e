import Synchronization
import ThreadDomain

/// Group commit, without I/O: per thread, at most one batch of commands is in
/// flight (loading, deciding, appending); commands that arrive meanwhile
/// queue, and go together as the next batch when it is answered. Commands of
/// one process for one thread therefore never conflict with each other, and a
/// busy thread costs one append per batch instead of one per command.
///
/// A batch that fails (the store is unavailable, the retries ran out) takes
/// the queued commands down with it, and a queued command whose deadline
/// passes leaves the queue: no command waits behind a stalled one for longer
/// than its own deadline.
struct GroupCommitQueues<Member: Sendable>: Sendable {
    struct Ticket: Sendable {
        let id: UInt64
        let member: Member
    }

    enum Admission: Sendable {
        /// Nothing in flight: the caller runs this batch (itself alone).
        case lead([Ticket])
        /// Queued behind the batch in flight.
        case wait
    }

    enum Expiry: Sendable, Equatable {
        /// Taken out of the queue: nothing of it will be written.
        case leftQueue
        /// In the batch in flight: it may still be written.
        case inFlight
        /// Already answered (or never enqueued).
        case answered
    }

    private struct Lane {
        var inFlight: Set<UInt64>
        var queued: [Ticket] = []
    }

    /// The most commands one append carries; more wait for the next one.
    let maximumBatch: Int
    private var lanes: [ThreadID: Lane] = [:]
    private var nextId: UInt64 = 0

    init(maximumBatch: Int) {
        precondition(maximumBatch > 0)
        self.maximumBatch = maximumBatch
    }

    mutating func enqueue(_ member: Member, on threadId: ThreadID) -> (Ticket, Admission) {
        nextId += 1
        let ticket = Ticket(id: nextId, member: member)
        guard lanes[threadId] != nil else {
            lanes[threadId] = Lane(inFlight: [ticket.id])
            return (ticket, .lead([ticket]))
        }
        lanes[threadId]?.queued.append(ticket)
        return (ticket, .wait)
    }

    /// The batch in flight was answered: the next batch, oldest first (its
    /// first ticket leads it), or nil when none is queued.
    mutating func batchFinished(on threadId: ThreadID) -> [Ticket]? {
        guard var lane = lanes[threadId] else { return nil }
        guard !lane.queued.isEmpty else {
            lanes[threadId] = nil
            return nil
        }
        let batch = Array(lane.queued.prefix(maximumBatch))
        lane.queued.removeFirst(batch.count)
        lane.inFlight = Set(batch.map(\.id))
        lanes[threadId] = lane
        return batch
    }

    /// The batch in flight failed as a whole: the queued tickets fail with it
    /// (they would meet the same store), and the thread is idle again.
    mutating func batchFailed(on threadId: ThreadID) -> [Ticket] {
        lanes.removeValue(forKey: threadId)?.queued ?? []
    }

    mutating func deadlinePassed(_ id: UInt64, on threadId: ThreadID) -> Expiry {
        guard var lane = lanes[threadId] else { return .answered }
        if lane.inFlight.contains(id) { return .inFlight }
        guard let index = lane.queued.firstIndex(where: { $0.id == id }) else { return .answered }
        lane.queued.remove(at: index)
        lanes[threadId] = lane
        return .leftQueue
    }

    var idle: Bool { lanes.isEmpty }
}

/// How a batch's commands are decided: in arrival order, each on the state
/// after the events of the ones accepted before it, exactly as if they had
/// come one after another. Pure, so the property tests compare it with a
/// serial run.
struct BatchDecision: Sendable, Hashable {
    enum Verdict: Sendable, Hashable {
        /// Events to append; `lastVersion` is the command's version once they are in.
        case accepted(events: [ThreadEvent], lastVersion: Int64)
        /// Nothing to change: the command is answered with this version.
        case unchanged(version: Int64)
        case refused(DomainError)
        /// Carries the idempotency key of the earlier command at this index:
        /// answered with that command's outcome.
        case sameKeyAs(Int)

        var isRefusal: Bool {
            if case .refused = self { return true }
            return false
        }
    }

    struct Command: Sendable, Hashable {
        var command: ThreadCommand
        var actor: AccountID
        var idempotencyKey: String?
    }

    let verdicts: [Verdict]
    /// The state after each command (as it was decided on, for one not accepted).
    let statesAfter: [ThreadState?]
    /// The state after every accepted command's events.
    let state: ThreadState?
    /// When the events are recorded.
    let at: Int64

    /// `commandIds`: the id each command's events are recorded under.
    init(_ commands: [Command], commandIds: [String], on state: ThreadState?, at: Int64) {
        var current = state
        var verdicts: [Verdict] = []
        var statesAfter: [ThreadState?] = []
        var firstWithKey: [String: Int] = [:]
        for (index, command) in commands.enumerated() {
            defer { statesAfter.append(current) }
            if let key = command.idempotencyKey {
                if let first = firstWithKey[key] {
                    verdicts.append(.sameKeyAs(first))
                    continue
                }
                firstWithKey[key] = index
            }
            let events: [ThreadEvent]
            do {
                events = try ThreadDecider.decide(current, command.command, actor: command.actor)
            } catch {
                verdicts.append(.refused(error))
                continue
            }
            let before = current?.version ?? 0
            guard !events.isEmpty else {
                verdicts.append(.unchanged(version: before))
                continue
            }
            for (offset, event) in events.enumerated() {
                current = ThreadDecider.evolve(
                    current,
                    RecordedEvent(
                        version: before + Int64(offset) + 1, at: at, actor: command.actor, commandId: commandIds[index],
                        event: event))
            }
            verdicts.append(.accepted(events: events, lastVersion: before + Int64(events.count)))
        }
        self.verdicts = verdicts
        self.statesAfter = statesAfter
        self.state = current
        self.at = at
    }

    /// The events of the command at `position` as they are recorded once appended.
    /// `landedAfter`: how many events later than decided the append went in
    /// (`AppendRequest.mayFollowMessages`).
    func recordedEvents(of position: Int, commandId: String, actor: AccountID, landedAfter: Int64) -> [RecordedEvent] {
        guard case .accepted(let events, let lastVersion) = verdicts[position] else { return [] }
        let before = lastVersion + landedAfter - Int64(events.count)
        return events.enumerated().map { offset, event in
            RecordedEvent(version: before + Int64(offset) + 1, at: at, actor: actor, commandId: commandId, event: event)
        }
    }
}

/// The answers of a batch's members, in order; `failure` when the batch
/// failed as a whole (the store, or the retries ran out).
struct BatchOutcome: Sendable {
    var answers: [Result<CommandOutcome, FunctionError>]
    var failure: FunctionError?
}

/// One command waiting for, or taking part in, its thread's batch.
struct BatchMember: Sendable {
    let request: CommandRequest
    /// The id its events are recorded under: the idempotency key, else a fresh ULID.
    let commandId: String
}

/// The `GroupCommitQueues` of one process, with the callers' waits: a caller
/// queued behind a batch sleeps until its batch is answered, it is asked to
/// lead the next batch, or its wait limit passes. Batches run in the task of
/// the caller that leads them (no task of their own).
final class GroupCommit: Sendable {
    typealias Answer = Result<CommandOutcome, FunctionError>
    typealias Ticket = GroupCommitQueues<BatchMember>.Ticket

    enum Turn: Sendable {
        case lead([Ticket])
        case answered(Answer)
    }

    private struct State {
        var queues: GroupCommitQueues<BatchMember>
        var waiters: [UInt64: CheckedContinuation<Turn, Never>] = [:]
    }

    private let state: Mutex<State>
    private let waitLimit: Duration

    init(maximumBatch: Int, waitLimit: Duration) {
        self.state = Mutex(State(queues: GroupCommitQueues(maximumBatch: maximumBatch)))
        self.waitLimit = waitLimit
    }

    /// Leads a batch at once when the thread has none in flight; else waits.
    func turn(for member: BatchMember) async -> Turn {
        let threadId = member.request.threadId
        let deadline = ContinuousClock.now + waitLimit
        return await withTaskGroup(of: Void.self) { group in
            let turn = await withCheckedContinuation { (continuation: CheckedContinuation<Turn, Never>) in
                let (ticket, admission) = state.withLock { state in
                    let (ticket, admission) = state.queues.enqueue(member, on: threadId)
                    if case .wait = admission { state.waiters[ticket.id] = continuation }
                    return (ticket, admission)
                }
                switch admission {
                case .lead(let batch):
                    continuation.resume(returning: .lead(batch))
                case .wait:
                    group.addTask {
                        try? await Task.sleep(until: deadline, clock: .continuous)
                        if !Task.isCancelled { self.deadlinePassed(ticket.id, on: threadId) }
                    }
                }
            }
            group.cancelAll()
            return turn
        }
    }

    /// Hands every member of the finished batch its answer, and the next batch
    /// to its leader; a batch that failed as a whole fails the queued members
    /// too. Answers the leader's own result.
    func finish(_ batch: [Ticket], _ outcome: BatchOutcome) -> Answer {
        let threadId = batch[0].member.request.threadId
        let answers = outcome.answers
        var resumptions: [(CheckedContinuation<Turn, Never>, Turn)] = []
        state.withLock { state in
            for (ticket, answer) in zip(batch, answers).dropFirst() {
                if let waiter = state.waiters.removeValue(forKey: ticket.id) { resumptions.append((waiter, .answered(answer))) }
            }
            if let error = outcome.failure {
                for ticket in state.queues.batchFailed(on: threadId) {
                    if let waiter = state.waiters.removeValue(forKey: ticket.id) { resumptions.append((waiter, .answered(.failure(error)))) }
                }
            } else if let next = state.queues.batchFinished(on: threadId), let waiter = state.waiters.removeValue(forKey: next[0].id) {
                resumptions.append((waiter, .lead(next)))
            }
        }
        for (waiter, turn) in resumptions { waiter.resume(returning: turn) }
        return answers[0]
    }

    private func deadlinePassed(_ id: UInt64, on threadId: ThreadID) {
        let waiter: CheckedContinuation<Turn, Never>? = state.withLock { state in
            switch state.queues.deadlinePassed(id, on: threadId) {
            case .leftQueue, .inFlight: state.waiters.removeValue(forKey: id)
            case .answered: nil
            }
        }
        waiter?.resume(
            returning: .answered(.failure(FunctionError(.unavailable, "the event store did not answer in time; the command may not be written"))))
    }
}
