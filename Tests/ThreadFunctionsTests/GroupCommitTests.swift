import Testing
import ThreadDomain
@testable import ThreadFunctions

/// The group-commit queues without I/O: who leads, who waits, what goes
/// together, and how a failure or a deadline lets waiting commands go.
@Suite struct GroupCommitQueuesTests {
    let hot = ThreadID("01J0000000000000000000H0T0")!
    let other = ThreadID("01J0000000000000000000C01D")!

    @Test func theFirstCommandOfAnIdleThreadLeadsAloneAndTheOthersWait() {
        var queues = GroupCommitQueues<String>(maximumBatch: 8)
        let (first, admission) = queues.enqueue("a", on: hot)
        guard case .lead(let batch) = admission else { Issue.record("expected to lead"); return }
        #expect(batch.map(\.id) == [first.id])
        guard case .wait = queues.enqueue("b", on: hot).1 else { Issue.record("b should wait"); return }
        // Another thread is independent.
        guard case .lead = queues.enqueue("x", on: other).1 else { Issue.record("x should lead its own thread"); return }
    }

    @Test func whenABatchIsAnsweredTheQueuedOnesGoTogetherInArrivalOrder() {
        var queues = GroupCommitQueues<String>(maximumBatch: 8)
        _ = queues.enqueue("a", on: hot)
        for name in ["b", "c", "d"] { _ = queues.enqueue(name, on: hot) }
        let next = queues.batchFinished(on: hot)
        #expect(next?.map(\.member) == ["b", "c", "d"])
        guard case .wait = queues.enqueue("e", on: hot).1 else { Issue.record("e should wait for b, c, d"); return }
        #expect(queues.batchFinished(on: hot)?.map(\.member) == ["e"])
        #expect(queues.batchFinished(on: hot) == nil)
        #expect(queues.idle)
        guard case .lead = queues.enqueue("f", on: hot).1 else { Issue.record("f finds the thread idle"); return }
    }

    @Test func aBatchCarriesAtMostTheMaximumAndTheRestWaitsForTheNext() {
        var queues = GroupCommitQueues<Int>(maximumBatch: 3)
        _ = queues.enqueue(0, on: hot)
        for number in 1...7 { _ = queues.enqueue(number, on: hot) }
        #expect(queues.batchFinished(on: hot)?.map(\.member) == [1, 2, 3])
        #expect(queues.batchFinished(on: hot)?.map(\.member) == [4, 5, 6])
        #expect(queues.batchFinished(on: hot)?.map(\.member) == [7])
    }

    @Test func aFailedBatchTakesTheQueuedOnesWithItAndLeavesTheThreadIdle() {
        var queues = GroupCommitQueues<String>(maximumBatch: 8)
        _ = queues.enqueue("a", on: hot)
        _ = queues.enqueue("b", on: hot)
        _ = queues.enqueue("c", on: hot)
        #expect(queues.batchFailed(on: hot).map(\.member) == ["b", "c"])
        #expect(queues.idle)
        guard case .lead = queues.enqueue("d", on: hot).1 else { Issue.record("d starts afresh"); return }
    }

    @Test func aDeadlineTakesAQueuedCommandOutButNotOneInFlight() {
        var queues = GroupCommitQueues<String>(maximumBatch: 8)
        let (a, _) = queues.enqueue("a", on: hot)
        let (b, _) = queues.enqueue("b", on: hot)
        let (c, _) = queues.enqueue("c", on: hot)
        #expect(queues.deadlinePassed(b.id, on: hot) == .leftQueue)
        #expect(queues.deadlinePassed(b.id, on: hot) == .answered)
        #expect(queues.deadlinePassed(a.id, on: hot) == .inFlight)
        #expect(queues.batchFinished(on: hot)?.map(\.member) == ["c"], "b left; c goes alone")
        #expect(queues.deadlinePassed(c.id, on: hot) == .inFlight)
        #expect(queues.batchFinished(on: hot) == nil)
        #expect(queues.deadlinePassed(c.id, on: hot) == .answered)
    }
}

/// A batch is decided exactly as its commands would be one after another.
@Suite struct BatchDecisionTests {
    static let threadId = ThreadID("01J0000000000000000000H0T0")!
    static let admin = AccountID("01J0000000000000000000ADMN")!
    static let people = (0..<4).map { AccountID("01J000000000000000000000P\($0)")! }

    /// A serial run: each command decided on the state its predecessors left.
    static func serial(_ commands: [BatchDecision.Command], on start: ThreadState?, at: Int64)
        -> (results: [Result<[ThreadEvent], DomainError>], state: ThreadState?)
    {
        var state = start
        var results: [Result<[ThreadEvent], DomainError>] = []
        for (index, command) in commands.enumerated() {
            do {
                let events = try ThreadDecider.decide(state, command.command, actor: command.actor)
                for event in events {
                    state = ThreadDecider.evolve(
                        state,
                        RecordedEvent(version: (state?.version ?? 0) + 1, at: at, actor: command.actor, commandId: "c\(index)", event: event))
                }
                results.append(.success(events))
            } catch {
                results.append(.failure(error))
            }
        }
        return (results, state)
    }

    /// Random commands over a small world, so that many of them clash: messages
    /// added twice, replies and removals of messages that may not exist yet,
    /// members leaving before they write, the thread destroyed midway.
    static func randomCommands(count: Int, using generator: inout some RandomNumberGenerator) -> [BatchDecision.Command] {
        let messageIds = (0..<6).map { MessageID("01J0000000000000000000MSG\($0)")! }
        return (0..<count).map { _ in
            let actor = ([admin] + people).randomElement(using: &generator)!
            let command: ThreadCommand
            switch Int.random(in: 0..<10, using: &generator) {
            case 0: command = .joinMembers([people.randomElement(using: &generator)!])
            case 1: command = .leaveMembers([people.randomElement(using: &generator)!])
            case 2: command = .removeMessages([messageIds.randomElement(using: &generator)!])
            case 3 where Int.random(in: 0..<4, using: &generator) == 0: command = .destroyThread
            case 4: command = .joinAdministrators([people.randomElement(using: &generator)!])
            default:
                command = .addMessages([
                    NewMessage(
                        id: messageIds.randomElement(using: &generator)!, text: "hi",
                        replyTo: Bool.random(using: &generator) ? messageIds.randomElement(using: &generator) : nil)
                ])
            }
            return BatchDecision.Command(command: command, actor: actor, idempotencyKey: nil)
        }
    }

    @Test("a batch accepts and refuses exactly what a serial run does", arguments: 0..<50)
    func batchEqualsSerial(seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        let created = ThreadCreated(
            threadId: Self.threadId, creatorId: Self.admin, title: "hot", administratorIds: [Self.admin],
            memberIds: Array(Self.people.prefix(2)))
        let start = ThreadDecider.evolve(
            nil, RecordedEvent(version: 1, at: 1, actor: Self.admin, commandId: "create", event: .threadCreated(created)))
        let commands = Self.randomCommands(count: 40, using: &generator)
        let decision = BatchDecision(commands, commandIds: commands.indices.map { "c\($0)" }, on: start, at: 7)
        let serial = Self.serial(commands, on: start, at: 7)

        var version: Int64 = 1
        for (verdict, expected) in zip(decision.verdicts, serial.results) {
            switch (verdict, expected) {
            case (.accepted(let events, let lastVersion), .success(let serialEvents)):
                #expect(events == serialEvents)
                version += Int64(events.count)
                #expect(lastVersion == version, "versions are contiguous over the batch")
            case (.unchanged(let unchangedVersion), .success(let serialEvents)):
                #expect(serialEvents.isEmpty)
                #expect(unchangedVersion == version)
            case (.refused(let error), .failure(let serialError)):
                #expect(error == serialError)
            default:
                Issue.record("batch \(verdict) but serial \(expected)")
            }
        }
        #expect(decision.state == serial.state)
        #expect(decision.state?.version == version)
        #expect(decision.verdicts.contains { if case .refused = $0 { true } else { false } }, "the world is small enough to clash")
    }

    @Test func aRepeatedIdempotencyKeyInOneBatchIsDecidedOnce() {
        let created = ThreadCreated(threadId: Self.threadId, creatorId: Self.admin, title: "hot", administratorIds: [Self.admin], memberIds: [])
        let start = ThreadDecider.evolve(
            nil, RecordedEvent(version: 1, at: 1, actor: Self.admin, commandId: "create", event: .threadCreated(created)))
        let message = ThreadCommand.addMessages([NewMessage(id: MessageID("01J0000000000000000000MSG0")!, text: "once")])
        let commands = [
            BatchDecision.Command(command: message, actor: Self.admin, idempotencyKey: "k"),
            BatchDecision.Command(command: message, actor: Self.admin, idempotencyKey: "k"),
        ]
        let decision = BatchDecision(commands, commandIds: ["k", "k"], on: start, at: 2)
        guard case .accepted(_, 2) = decision.verdicts[0] else { Issue.record("\(decision.verdicts)"); return }
        #expect(decision.verdicts[1] == .sameKeyAs(0), "not refused as message_exists: it is the same command")
    }
}

/// SplitMix64: a small seeded generator, so a failing case can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
