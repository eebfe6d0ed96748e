import EventStore
import ReadModel
import RedisClient
import Testing
import ThreadDomain

@Suite("Worker state machine")
struct WorkerStateMachineTests {
    let threadId = ULID.generate()
    let actor = ULID.generate()

    func entry(version: Int64, deliveries: Int = 1, id: String? = nil, partition: Int = 0) -> DeliveredEntry {
        let fields: [String] = [
            "thread", threadId.rawValue, "version", String(version), "type", "MemberIdsJoined", "at", "1700000000000",
            "actor", actor.rawValue, "cmd", "c1", "data", #"{"accountIds":["\#(actor.rawValue)"]}"#,
        ]
        return DeliveredEntry(
            partition: partition, id: id ?? "\(version)-0", fields: fields.map { .bulkString(Array($0.utf8)) }, deliveryCount: deliveries)
    }

    @Test func claimsFirstThenReadsUntilTheClaimIntervalHasPassed() {
        var machine = WorkerStateMachine(configuration: .init(claimInterval: .seconds(10)))
        let start = ContinuousClock.now
        #expect(machine.nextStep(now: start) == .claimStale)
        #expect(machine.nextStep(now: start + .seconds(1)) == .readNew)
        #expect(machine.nextStep(now: start + .seconds(9)) == .readNew)
        #expect(machine.nextStep(now: start + .seconds(10)) == .claimStale)
        #expect(machine.nextStep(now: start + .seconds(11)) == .readNew)
    }

    @Test func aReadThatCaughtUpMakesTheNextGatherForThePause() {
        var machine = WorkerStateMachine(configuration: .init(claimInterval: .seconds(10), batchSize: 100, gatherPause: .milliseconds(2)))
        let start = ContinuousClock.now
        #expect(machine.nextStep(now: start) == .claimStale)
        #expect(machine.nextStep(now: start) == .readNew)
        // Some entries, fewer than a batch: the next read waits 2 ms from this one's return.
        machine.readReturned(3, now: start)
        #expect(machine.nextStep(now: start + .microseconds(500)) == .pause(.microseconds(1_500)))
        #expect(machine.nextStep(now: start + .milliseconds(2)) == .readNew)
        // A full batch (a backlog) or none (the block timed out): at once.
        machine.readReturned(100, now: start + .milliseconds(3))
        #expect(machine.nextStep(now: start + .milliseconds(3)) == .readNew)
        machine.readReturned(0, now: start + .milliseconds(4))
        #expect(machine.nextStep(now: start + .milliseconds(4)) == .readNew)
        // Claims still come first when due, and stopping beats a pause.
        machine.readReturned(1, now: start + .seconds(10))
        #expect(machine.nextStep(now: start + .seconds(10)) == .claimStale)
        #expect(machine.nextStep(now: start + .seconds(10)) == .pause(.milliseconds(2)))
        machine.requestStop()
        #expect(machine.nextStep(now: start + .seconds(10)) == .stop)
    }

    @Test func withNoPauseTheNextReadIsAtOnce() {
        var machine = WorkerStateMachine(configuration: .init(gatherPause: .zero))
        let start = ContinuousClock.now
        _ = machine.nextStep(now: start)
        machine.readReturned(1, now: start)
        #expect(machine.nextStep(now: start) == .readNew)
    }

    @Test func stopsOnceAStopIsRequested() {
        var machine = WorkerStateMachine()
        _ = machine.nextStep(now: .now)
        machine.requestStop()
        #expect(machine.isStopping)
        #expect(machine.nextStep(now: .now) == .stop)
        #expect(machine.nextStep(now: .now + .seconds(100)) == .stop)
    }

    /// The entry's data goes on as stored: tw_rm_apply reads and checks it.
    @Test func projectsAnEntryWithItsDataAsStored() throws {
        let machine = WorkerStateMachine()
        guard case .project(let thread, let event) = machine.disposition(of: entry(version: 3)) else {
            Issue.record("expected a projection")
            return
        }
        #expect(thread == threadId)
        #expect(event.version == 3)
        #expect(event.typeName == "MemberIdsJoined")
        #expect(event.data == #"{"accountIds":["\#(actor.rawValue)"]}"#)
        #expect(try event.decoded().event == .memberIdsJoined([actor]))
    }

    @Test func deadLettersAnUndecodableEntry() {
        let machine = WorkerStateMachine()
        let poison = DeliveredEntry(
            partition: 1, id: "5-0", fields: ["thread", "nope", "data", "{"].map { .bulkString(Array($0.utf8)) }, deliveryCount: 1)
        guard case .deadLetter(let reason) = machine.disposition(of: poison) else {
            Issue.record("expected a dead letter")
            return
        }
        #expect(reason.hasPrefix("undecodable"))
    }

    @Test func deadLettersAnEntryDeliveredTooOften() {
        let machine = WorkerStateMachine(configuration: .init(maximumDeliveries: 3))
        guard case .project(let projectedThread, let event) = machine.disposition(of: entry(version: 1, deliveries: 3)) else {
            Issue.record("an entry delivered the maximum number of times is still projected")
            return
        }
        #expect(projectedThread == threadId)
        #expect(event.version == 1)
        guard case .deadLetter(let reason) = machine.disposition(of: entry(version: 1, deliveries: 4)) else {
            Issue.record("expected a dead letter")
            return
        }
        #expect(reason == "delivered 4 times (maximum 3)")
    }

    @Test func settlesAcksRefusalsAndFailures() {
        let machine = WorkerStateMachine()
        let other = ULID.generate()
        var plan = machine.plan([entry(version: 1, id: "1-0"), entry(version: 2, id: "2-0", partition: 1)])
        let poison = DeliveredEntry(partition: 0, id: "9-0", fields: [], deliveryCount: 1)
        plan.deadLetters += machine.plan([poison]).deadLetters
        var failing = entry(version: 7, id: "7-0")
        failing.fields[1] = .bulkString(Array(other.rawValue.utf8))
        plan.projections += machine.plan([failing]).projections

        var report = Projector.Report()
        report.applied = 1
        report.rejected[2] = "bad"
        let settlement = machine.settle(
            plan, outcomes: [threadId: .success(report), other: .failure(ReadModelError(.unavailable, "down"))])

        #expect(settlement.acknowledgements == [0: ["1-0"]])
        #expect(settlement.projected.map(\.entry.id) == ["1-0"], "what is acknowledged is what the worker times")
        #expect(settlement.deadLetters.map(\.entry.id) == ["9-0", "2-0"])
        #expect(settlement.deadLetters[1].reason == "refused: bad")
        #expect(settlement.leftPending.map(\.id) == ["7-0"])
    }
}
