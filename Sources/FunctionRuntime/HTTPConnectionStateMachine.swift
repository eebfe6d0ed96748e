import NIOCore

/// What a connection's task is handed: a request to answer, or news that none can be read.
enum HTTPConnectionItem<Request> {
    case request(Request)
    /// The bytes were not HTTP: the task answers 400 and closes.
    case malformed
}

/// One HTTP/1.1 connection's hand-over between its channel handler, which
/// reads requests on the event loop, and its task, which answers them one at
/// a time, in order. It decides; the handler and the task act. No I/O here.
///
/// `Waiter` is what the task leaves when it asks for a request and none has
/// arrived: a continuation in the server, a plain value in the tests.
struct HTTPConnectionStateMachine<Request, Waiter> {
    typealias Item = HTTPConnectionItem<Request>

    enum NextAction {
        /// Answer this one. `resumeReading`: reading was held while the
        /// queue was full and may go on.
        case answer(Item, resumeReading: Bool)
        /// Nothing yet: the waiter is kept until a request arrives or the connection ends.
        case wait
        /// No request will come: close the connection.
        case finish
    }

    enum ReceiveAction {
        case resume(Waiter, Item)
        case none
    }

    enum IdleAction: Equatable {
        case close
        case checkAgain(at: NIODeadline)
    }

    /// Complete requests read ahead of the one being answered (a pipelining client).
    private var queued: [Item] = []
    private var waiter: Waiter?
    /// A head arrived and its end has not.
    private var receiving = false
    /// The task holds a request and has not asked for the next.
    private var answering = false
    private var inputOpen = true
    private var quiescing = false
    private var readHeld = false
    private var lastActivity: NIODeadline
    private let maximumQueued: Int
    private let idleTimeout: TimeAmount

    init(maximumQueued: Int, idleTimeout: TimeAmount, now: NIODeadline) {
        precondition(maximumQueued > 0)
        self.maximumQueued = maximumQueued
        self.idleTimeout = idleTimeout
        self.lastActivity = now
    }

    /// A request's head, or a part of its body, was read.
    mutating func partRead(now: NIODeadline, startsRequest: Bool) {
        lastActivity = now
        if startsRequest { receiving = true }
    }

    /// A request is complete (or cannot be read).
    mutating func received(_ item: Item, now: NIODeadline) -> ReceiveAction {
        lastActivity = now
        receiving = false
        guard inputOpen else { return .none }
        if let waiter {
            self.waiter = nil
            answering = true
            return .resume(waiter, item)
        }
        queued.append(item)
        return .none
    }

    /// The task finished its last response (if any) and asks for the next request.
    mutating func next(_ waiter: Waiter, now: NIODeadline) -> NextAction {
        if answering {
            answering = false
            lastActivity = now
        }
        if !queued.isEmpty {
            let item = queued.removeFirst()
            answering = true
            let resume = readHeld && queued.count < maximumQueued
            if resume { readHeld = false }
            return .answer(item, resumeReading: resume)
        }
        if !inputOpen || (quiescing && !receiving) { return .finish }
        self.waiter = waiter
        return .wait
    }

    /// The handler may ask the socket for more bytes: no, while the queue is full.
    mutating func mayRead() -> Bool {
        if queued.count >= maximumQueued {
            readHeld = true
            return false
        }
        return true
    }

    /// The client closed its side, or the connection ended: the queued requests
    /// are still answered, then the task ends.
    mutating func inputEnded() -> Waiter? {
        inputOpen = false
        receiving = false
        return takeWaiter()
    }

    /// The server shuts down gracefully: requests read or being read are
    /// answered, then the connection closes.
    mutating func quiesce() -> Waiter? {
        quiescing = true
        return receiving ? nil : takeWaiter()
    }

    /// The idle timer fired. A connection that read nothing for the idle
    /// timeout and answers nothing closes; a response being written, such
    /// as a watch stream, is never cut.
    func idleTimerFired(now: NIODeadline) -> IdleAction {
        if answering || !queued.isEmpty { return .checkAgain(at: now + idleTimeout) }
        let deadline = lastActivity + idleTimeout
        return now >= deadline ? .close : .checkAgain(at: deadline)
    }

    private mutating func takeWaiter() -> Waiter? {
        defer { waiter = nil }
        return waiter
    }
}

extension HTTPConnectionItem: Sendable where Request: Sendable {}
extension HTTPConnectionStateMachine: Sendable where Request: Sendable, Waiter: Sendable {}
