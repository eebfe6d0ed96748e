import NIOCore
import Testing

@testable import RedisClient

@Suite struct ConnectionStateMachineTests {
    private func at(_ milliseconds: Int64) -> NIODeadline {
        .uptimeNanoseconds(UInt64(milliseconds) * 1_000_000)
    }

    @Test func repliesCompleteCommandsInSendOrder() {
        var machine = ConnectionStateMachine<Int>()
        for id in 1...3 {
            guard case .write = machine.send(id, deadline: nil) else {
                Issue.record("send \(id) was not written")
                return
            }
        }
        var completed: [Int] = []
        for _ in 1...3 {
            guard case .complete(let id) = machine.receivedReply() else {
                Issue.record("reply did not complete a command")
                return
            }
            completed.append(id)
        }
        #expect(completed == [1, 2, 3])
        #expect(machine.inFlightCount == 0)
    }

    @Test func timerIsArmedOnlyForAnEarlierDeadline() {
        var machine = ConnectionStateMachine<Int>()
        guard case .write(let first) = machine.send(1, deadline: at(500)) else { return #expect(Bool(false)) }
        #expect(first == at(500))
        guard case .write(let later) = machine.send(2, deadline: at(900)) else { return #expect(Bool(false)) }
        #expect(later == nil)
        guard case .write(let none) = machine.send(3, deadline: nil) else { return #expect(Bool(false)) }
        #expect(none == nil)
        guard case .write(let earlier) = machine.send(4, deadline: at(300)) else { return #expect(Bool(false)) }
        #expect(earlier == at(300))
    }

    @Test func timerBeforeAnyDeadlineRearmsForTheEarliestRemaining() {
        var machine = ConnectionStateMachine<Int>()
        _ = machine.send(1, deadline: at(100))
        _ = machine.send(2, deadline: at(700))
        _ = machine.send(3, deadline: at(400))
        _ = machine.receivedReply()  // command 1 answered in time
        guard case .arm(let next) = machine.timerFired(now: at(150)) else {
            Issue.record("expected the timer to be re-armed")
            return
        }
        #expect(next == at(400))
        #expect(machine.isOpen)
    }

    @Test func timerWithNothingInFlightStaysDisarmed() {
        var machine = ConnectionStateMachine<Int>()
        _ = machine.send(1, deadline: at(100))
        _ = machine.receivedReply()
        guard case .none = machine.timerFired(now: at(100)) else {
            Issue.record("expected no action")
            return
        }
        // The next send must arm the timer again.
        guard case .write(let armed) = machine.send(2, deadline: at(900)) else { return #expect(Bool(false)) }
        #expect(armed == at(900))
    }

    @Test func expiredDeadlineClosesAndFailsEverythingInFlight() {
        var machine = ConnectionStateMachine<Int>()
        _ = machine.send(1, deadline: nil)
        _ = machine.send(2, deadline: at(200))
        _ = machine.send(3, deadline: at(900))
        guard case .closeConnection(let failures) = machine.timerFired(now: at(250)) else {
            Issue.record("expected the connection to close")
            return
        }
        #expect(failures.map(\.promise) == [1, 2, 3])
        #expect(failures.map(\.error.code) == [.connectionClosed, .timeout, .connectionClosed])
        #expect(!machine.isOpen)
        guard case .fail(let error) = machine.send(4, deadline: nil) else {
            Issue.record("send after close must fail")
            return
        }
        #expect(error.code == .connectionClosed)
    }

    @Test func replyWithNobodyWaitingIsAProtocolError() {
        var machine = ConnectionStateMachine<Int>()
        guard case .closeConnection(let failures) = machine.receivedReply() else {
            Issue.record("expected the connection to close")
            return
        }
        #expect(failures.isEmpty)
        #expect(!machine.isOpen)
    }

    @Test func channelCloseFailsInFlightOnceWithConnectionClosed() {
        var machine = ConnectionStateMachine<Int>()
        _ = machine.send(1, deadline: nil)
        _ = machine.send(2, deadline: at(100))
        let failures = machine.channelClosed()
        #expect(failures.map(\.promise) == [1, 2])
        #expect(failures.allSatisfy { $0.error.code == .connectionClosed })
        let secondClose = machine.channelClosed()
        #expect(secondClose.isEmpty)
        guard case .ignore = machine.receivedReply() else {
            Issue.record("a late reply after close must be ignored")
            return
        }
    }

    @Test func explicitCloseUsesTheGivenReason() {
        var machine = ConnectionStateMachine<Int>()
        _ = machine.send(7, deadline: nil)
        let failures = machine.close(reason: RedisError(code: .cancelled, message: "cancelled"))
        #expect(failures.map(\.promise) == [7])
        #expect(failures.first?.error.code == .cancelled)
        guard case .none = machine.timerFired(now: at(1)) else {
            Issue.record("the timer of a closed connection does nothing")
            return
        }
    }
}
