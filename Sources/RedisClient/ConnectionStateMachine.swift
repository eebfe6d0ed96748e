import NIOCore

/// The in-flight queue of one pipelined connection and its single timeout
/// timer, without I/O: the channel handler performs the actions it returns.
///
/// Redis answers in request order, so replies pop the queue front. One timer
/// armed for the earliest deadline is enough — a later command cannot be
/// answered before an earlier one — and avoids one scheduled task per command.
/// When a deadline passes the connection must close: the late reply would
/// otherwise be taken for the next command's.
struct ConnectionStateMachine<Promise> {
    typealias Failure = (promise: Promise, error: RedisError)

    private struct InFlight {
        var promise: Promise
        var deadline: NIODeadline?
    }

    private enum State {
        case open
        case closed
    }

    private var state = State.open
    private var inFlight = CircularBuffer<InFlight>()
    /// The deadline the handler's timer is armed for, if it is armed.
    private var armedDeadline: NIODeadline?

    var inFlightCount: Int { inFlight.count }
    var isOpen: Bool { if case .open = state { true } else { false } }

    enum SendAction {
        /// Write the command; (re)arm the timer for this deadline when given.
        case write(armTimer: NIODeadline?)
        case fail(RedisError)
    }

    mutating func send(_ promise: Promise, deadline: NIODeadline?) -> SendAction {
        guard case .open = state else {
            return .fail(RedisError(code: .connectionClosed, message: "connection is closed"))
        }
        inFlight.append(InFlight(promise: promise, deadline: deadline))
        guard let deadline, armedDeadline.map({ deadline < $0 }) ?? true else {
            return .write(armTimer: nil)
        }
        armedDeadline = deadline
        return .write(armTimer: deadline)
    }

    enum ReplyAction {
        case complete(Promise)
        /// The connection is already closing; the reply has nobody to go to.
        case ignore
        case closeConnection(failing: [Failure])
    }

    mutating func receivedReply() -> ReplyAction {
        guard case .open = state else { return .ignore }
        guard let first = inFlight.popFirst() else {
            return .closeConnection(
                failing: close(
                    reason: RedisError(code: .protocolError, message: "received a reply no command was waiting for")))
        }
        return .complete(first.promise)
    }

    enum TimerAction {
        case none
        case arm(NIODeadline)
        case closeConnection(failing: [Failure])
    }

    /// The timer went off at `now`: fail what expired (and, since the connection
    /// must close, everything else in flight), or re-arm for the next deadline.
    mutating func timerFired(now: NIODeadline) -> TimerAction {
        armedDeadline = nil
        guard case .open = state else { return .none }
        guard inFlight.contains(where: { $0.deadline.map { $0 <= now } ?? false }) else {
            guard let next = inFlight.compactMap(\.deadline).min() else { return .none }
            armedDeadline = next
            return .arm(next)
        }
        state = .closed
        let expired = RedisError(
            code: .timeout, message: "no reply before the command timeout; the connection was closed")
        let collateral = RedisError(
            code: .connectionClosed, message: "connection closed because an earlier command timed out")
        let failures = inFlight.map { entry in
            (promise: entry.promise, error: entry.deadline.map { $0 <= now } ?? false ? expired : collateral)
        }
        inFlight.removeAll()
        return .closeConnection(failing: failures)
    }

    /// The handler decided to close (protocol error, cancellation, socket error):
    /// everything in flight fails with `reason`.
    mutating func close(reason: RedisError) -> [Failure] {
        guard case .open = state else { return [] }
        state = .closed
        let failures = inFlight.map { (promise: $0.promise, error: reason) }
        inFlight.removeAll()
        return failures
    }

    /// The channel went away (server closed it, network dropped, or after our own close).
    mutating func channelClosed() -> [Failure] {
        close(reason: RedisError(code: .connectionClosed, message: "connection closed by the server or the network"))
    }
}
