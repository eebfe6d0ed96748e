@testable import ReadModel
import Synchronization
import Testing
import ThreadDomain

@Suite("minVersion waits: one poller for all waiters")
struct VersionWaitStateMachineTests {
    typealias Machine = VersionWaitStateMachine<String>
    let thread = ULID.generate()
    let other = ULID.generate()
    let later = ContinuousClock.now + .seconds(60)

    @Test func theFirstToParkPollsAndTheOthersSleep() throws {
        var machine = Machine(maximumWaiters: 10)
        let first = try machine.added(thread, minVersion: 3, deadline: later)
        let second = try machine.added(thread, minVersion: 5, deadline: later)
        guard case .poll = machine.park(first, "first") else { Issue.record("the first waiter must poll"); return }
        #expect(machine.park(second, "second") == nil, "the second sleeps")
        #expect(machine.threadsDue(at: .now).isEmpty, "the first check comes after the first pause")
        #expect(machine.threadsDue(at: .now + .milliseconds(3)) == [thread], "one read for both waiters of the thread")
    }

    @Test func aPollWakesOnlyTheWaitersItSatisfiedAndTheOthersPauseLonger() throws {
        var machine = Machine(maximumWaiters: 10)
        let start = ContinuousClock.now
        let poller = try machine.added(thread, minVersion: 9, deadline: later, now: start)
        let low = try machine.added(thread, minVersion: 3, deadline: later, now: start)
        let high = try machine.added(other, minVersion: 5, deadline: later, now: start)
        _ = machine.park(poller, "poller")
        _ = machine.park(low, "low")
        _ = machine.park(high, "high")
        let firstCheck = start + .milliseconds(2)
        #expect(Set(machine.threadsDue(at: firstCheck)) == [thread, other])
        let woken = machine.polled([thread: 4, other: 4], now: firstCheck)
        #expect(woken.map(\.0) == ["low"])
        guard case .reached = woken.first?.1 else { Issue.record("low reached its version"); return }
        #expect(machine.threadsDue(at: firstCheck + .milliseconds(3)).isEmpty, "the next pause is 4 ms")
        #expect(Set(machine.threadsDue(at: firstCheck + .milliseconds(4))) == [thread, other])
        var now = firstCheck
        for _ in 0..<10 {
            now += .milliseconds(50)
            _ = machine.polled([thread: 4, other: 4], now: now)
        }
        #expect(machine.threadsDue(at: now + .milliseconds(49)).isEmpty, "pauses stop growing at 50 ms")
        #expect(machine.threadsDue(at: now + .milliseconds(50)).count == 2)
    }

    @Test func thePollerHandsOverWhenItsOwnWaitEnds() throws {
        var machine = Machine(maximumWaiters: 10)
        let poller = try machine.added(thread, minVersion: 2, deadline: later)
        let sleeper = try machine.added(other, minVersion: 7, deadline: later)
        _ = machine.park(poller, "poller")
        _ = machine.park(sleeper, "sleeper")
        #expect(machine.pollerStepsDown(poller) == nil, "its wait has not ended")
        #expect(machine.polled([thread: 2, other: 1], now: .now).isEmpty, "the poller is not parked: nothing to wake")
        let stepDown = try machine.steppedDown(poller)
        guard case .reached = stepDown.outcome else { Issue.record("the poller reached its version"); return }
        #expect(stepDown.successor == "sleeper")
        #expect(machine.poller == sleeper)
        #expect(machine.threadsDue(at: .now + .seconds(1)) == [other])
    }

    @Test func withNoOneParkedTheNextToParkBecomesThePoller() throws {
        var machine = Machine(maximumWaiters: 10)
        let poller = try machine.added(thread, minVersion: 1, deadline: later)
        _ = machine.park(poller, "poller")
        let newcomer = try machine.added(thread, minVersion: 8, deadline: later)
        _ = machine.polled([thread: 1], now: .now)
        let stepDown = try machine.steppedDown(poller)
        #expect(stepDown.successor == nil)
        guard case .poll = machine.park(newcomer, "newcomer") else { Issue.record("the newcomer must take over"); return }
    }

    @Test func waitsPastTheirDeadlineExpire() throws {
        var machine = Machine(maximumWaiters: 10)
        let now = ContinuousClock.now
        let poller = try machine.added(thread, minVersion: 1, deadline: later)
        let soon = try machine.added(thread, minVersion: 9, deadline: now + .milliseconds(5))
        _ = machine.park(poller, "poller")
        _ = machine.park(soon, "soon")
        #expect(machine.polled([thread: 0], now: now).isEmpty)
        let woken = machine.polled([thread: 0], now: now + .milliseconds(10))
        #expect(woken.map(\.0) == ["soon"])
        guard case .expired = woken.first?.1 else { Issue.record("soon expired"); return }
    }

    @Test func aCancelledWaiterIsWokenAndAnUnparkedOneFindsItsOutcome() throws {
        var machine = Machine(maximumWaiters: 10)
        let poller = try machine.added(thread, minVersion: 1, deadline: later)
        let parked = try machine.added(thread, minVersion: 2, deadline: later)
        let unparked = try machine.added(thread, minVersion: 3, deadline: later)
        _ = machine.park(poller, "poller")
        _ = machine.park(parked, "parked")
        #expect(machine.cancel(parked) == "parked")
        #expect(machine.cancel(unparked) == nil)
        guard case .cancelled = machine.park(unparked, "unparked") else { Issue.record("cancelled before parking"); return }
        #expect(machine.waiterCount == 1, "only the poller is left")
    }

    @Test func aFailedPollEndsEveryWait() throws {
        var machine = Machine(maximumWaiters: 10)
        let poller = try machine.added(thread, minVersion: 1, deadline: later)
        let parked = try machine.added(other, minVersion: 2, deadline: later)
        _ = machine.park(poller, "poller")
        _ = machine.park(parked, "parked")
        let woken = machine.pollFailed(ReadModelError(.unavailable, "down"))
        #expect(woken.map(\.0) == ["parked"])
        guard case .failed(let error)? = machine.pollerStepsDown(poller)?.outcome, error.code == .unavailable else {
            Issue.record("the poller's own wait fails too"); return
        }
    }

    @Test func waitersBeyondTheMaximumAreRefused() {
        var machine = Machine(maximumWaiters: 2)
        #expect(machine.add(thread, minVersion: 1, deadline: later) != nil)
        #expect(machine.add(thread, minVersion: 1, deadline: later) != nil)
        #expect(machine.add(thread, minVersion: 1, deadline: later) == nil)
    }
}

@Suite("minVersion waits with a fake read model")
struct VersionWaitsTests {
    /// A read model whose version of every thread grows by one per read.
    final class GrowingVersions: Sendable {
        private let state = Mutex((reads: 0, threadsRead: 0, version: Int64(0)))
        var reads: Int { state.withLock { $0.reads } }
        var threadsRead: Int { state.withLock { $0.threadsRead } }

        func read(_ threads: [ThreadID]) -> [ThreadID: Int64] {
            state.withLock { state in
                state.reads += 1
                state.threadsRead += threads.count
                state.version += 1
                return Dictionary(uniqueKeysWithValues: threads.map { ($0, state.version) })
            }
        }
    }

    @Test func twoHundredWaitersAreServedByOneReadPerTick() async throws {
        let versions = GrowingVersions()
        let waits = VersionWaits(maximumWaiters: 1_000, pollInterval: .milliseconds(1), longestPause: .milliseconds(8)) { threads in versions.read(threads) }
        let threads = (0..<4).map { _ in ULID.generate() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for waiter in 0..<200 {
                group.addTask {
                    try await waits.wait(until: Int64(waiter % 20 + 1), of: threads[waiter % 4], timeout: .seconds(10))
                }
            }
            try await group.waitForAll()
        }
        // Polling per request would read at least once per waiter (200 reads); one poller needs about 20.
        #expect(versions.reads < 60, "\(versions.reads) reads for 200 waiters")
        #expect(versions.threadsRead <= versions.reads * 4, "each read names each waited thread once")
        #expect(waits.waiterCount == 0)
    }

    @Test func aWaitThatIsNotReachedTimesOut() async {
        let waits = VersionWaits(maximumWaiters: 10, pollInterval: .milliseconds(1), longestPause: .milliseconds(8)) { threads in
            Dictionary(uniqueKeysWithValues: threads.map { ($0, 0) })
        }
        await #expect(throws: ReadModelError.self) {
            try await waits.wait(until: 1, of: ULID.generate(), timeout: .milliseconds(30))
        }
        #expect(waits.waiterCount == 0)
    }

    @Test func waitersBeyondTheMaximumAreRefusedAtOnceAsUnavailable() async throws {
        let waits = VersionWaits(maximumWaiters: 2, pollInterval: .milliseconds(1), longestPause: .milliseconds(8)) { threads in
            Dictionary(uniqueKeysWithValues: threads.map { ($0, 0) })
        }
        let thread = ULID.generate()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<2 {
                group.addTask { try? await waits.wait(until: 1, of: thread, timeout: .seconds(1)) }
            }
            while waits.waiterCount < 2 { try await Task.sleep(for: .milliseconds(1)) }
            do {
                try await waits.wait(until: 1, of: thread, timeout: .seconds(1))
                Issue.record("a third waiter was accepted")
            } catch {
                #expect((error as? ReadModelError)?.code == .unavailable)
            }
            group.cancelAll()
        }
        #expect(waits.waiterCount == 0, "cancelled waits leave")
    }
}

struct UnexpectedNil: Error {}

extension VersionWaitStateMachine {
    mutating func added(
        _ threadId: ThreadID, minVersion: Int64, deadline: ContinuousClock.Instant, now: ContinuousClock.Instant = .now
    ) throws -> Int {
        guard let id = add(threadId, minVersion: minVersion, deadline: deadline, now: now) else { throw UnexpectedNil() }
        return id
    }

    mutating func steppedDown(_ id: Int) throws -> (outcome: VersionWaitOutcome, successor: Waiter?) {
        guard let result = pollerStepsDown(id) else { throw UnexpectedNil() }
        return result
    }
}
