@testable import FunctionRuntime
import HTTPTypes
import NIOCore
import Testing

/// The hand-over between an HTTP connection's handler and its task, without
/// a socket: requests in order, a waiting task resumed, reading held while
/// the queue is full, and when the connection ends.
@Suite struct HTTPConnectionStateMachineTests {
    typealias Machine = HTTPConnectionStateMachine<String, Int>
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func machine(maximumQueued: Int = 2) -> Machine {
        Machine(maximumQueued: maximumQueued, idleTimeout: .seconds(30), now: start)
    }

    func answered(_ action: Machine.NextAction) -> (String, Bool)? {
        if case .answer(.request(let request), let resume) = action { return (request, resume) }
        return nil
    }

    func resumed(_ action: Machine.ReceiveAction) -> (Int, String)? {
        if case .resume(let waiter, .request(let request)) = action { return (waiter, request) }
        return nil
    }

    func waits(_ action: Machine.NextAction) -> Bool {
        if case .wait = action { return true }
        return false
    }

    func finishes(_ action: Machine.NextAction) -> Bool {
        if case .finish = action { return true }
        return false
    }

    @Test func aRequestArrivingWhileTheTaskWaitsResumesIt() {
        var state = machine()
        #expect(waits(state.next(7, now: start)))
        let action = state.received(.request("a"), now: start)
        #expect(resumed(action)! == (7, "a"))
    }

    @Test func pipelinedRequestsAreAnsweredInTheirOrder() {
        var state = machine(maximumQueued: 4)
        for request in ["a", "b", "c"] {
            if case .resume = state.received(.request(request), now: start) { Issue.record("no task was waiting") }
        }
        #expect(answered(state.next(1, now: start))?.0 == "a")
        #expect(answered(state.next(1, now: start))?.0 == "b")
        #expect(answered(state.next(1, now: start))?.0 == "c")
        #expect(waits(state.next(1, now: start)))
    }

    @Test func readingIsHeldWhileTheQueueIsFullAndResumedWhenItDrains() {
        var state = machine(maximumQueued: 2)
        let readAtFirst = state.mayRead()
        #expect(readAtFirst)
        _ = state.received(.request("a"), now: start)
        _ = state.received(.request("b"), now: start)
        let readWhenFull = state.mayRead()
        #expect(!readWhenFull)
        let first = answered(state.next(1, now: start))
        #expect(first?.0 == "a")
        #expect(first?.1 == true)
        let readAfterDraining = state.mayRead()
        #expect(readAfterDraining)
        #expect(answered(state.next(1, now: start))?.1 == false)
    }

    @Test func theEndOfInputEndsAWaitingTaskButQueuedRequestsAreStillAnswered() {
        var state = machine()
        _ = state.received(.request("a"), now: start)
        let waiterAtEnd = state.inputEnded()
        #expect(waiterAtEnd == nil)
        #expect(answered(state.next(1, now: start))?.0 == "a")
        #expect(finishes(state.next(1, now: start)))

        var idle = machine()
        #expect(waits(idle.next(3, now: start)))
        let idleWaiter = idle.inputEnded()
        #expect(idleWaiter == 3)
        if case .resume = idle.received(.request("late"), now: start) { Issue.record("read after the end of input") }
    }

    @Test func quiescingClosesAnIdleConnectionAndLetsARequestBeingReadFinish() {
        var idle = machine()
        #expect(waits(idle.next(5, now: start)))
        let quiescedWaiter = idle.quiesce()
        #expect(quiescedWaiter == 5)

        var reading = machine()
        #expect(waits(reading.next(5, now: start)))
        reading.partRead(now: start, startsRequest: true)
        let readingWaiter = reading.quiesce()
        #expect(readingWaiter == nil)
        #expect(resumed(reading.received(.request("a"), now: start))! == (5, "a"))
        #expect(finishes(reading.next(5, now: start)))
    }

    @Test func anIdleConnectionClosesAfterTheTimeoutButAResponseBeingWrittenIsNeverCut() {
        var state = machine()
        #expect(waits(state.next(1, now: start)))
        #expect(state.idleTimerFired(now: start + .seconds(10)) == .checkAgain(at: start + .seconds(30)))
        #expect(state.idleTimerFired(now: start + .seconds(30)) == .close)

        _ = state.received(.request("watch"), now: start + .seconds(31))
        #expect(state.idleTimerFired(now: start + .seconds(90)) == .checkAgain(at: start + .seconds(120)))
        // The response is done at 100 s: idle from there.
        #expect(waits(state.next(1, now: start + .seconds(100))))
        #expect(state.idleTimerFired(now: start + .seconds(120)) == .checkAgain(at: start + .seconds(130)))
        #expect(state.idleTimerFired(now: start + .seconds(130)) == .close)
    }

    @Test func aTricklingBodyKeepsTheConnectionOpen() {
        var state = machine()
        #expect(waits(state.next(1, now: start)))
        state.partRead(now: start + .seconds(20), startsRequest: true)
        state.partRead(now: start + .seconds(40), startsRequest: false)
        #expect(state.idleTimerFired(now: start + .seconds(60)) == .checkAgain(at: start + .seconds(70)))
    }
}

/// Responses as bytes on the wire.
@Suite struct HTTP1ResponseEncodingTests {
    func head(_ fields: HTTPFields, framing: HTTP1BodyFraming = .length, closing: Bool = false, serverName: String? = "tw") -> String {
        var buffer = ByteBuffer()
        HTTP1ResponseEncoding.writeHead(
            status: .notFound, fields: fields, framing: framing, closing: closing,
            date: "Fri, 04 Dec 2026 13:22:56 GMT", serverName: serverName, into: &buffer)
        return String(buffer: buffer)
    }

    @Test func theStatusLineAndFieldsAreWrittenAsGivenThenDateAndServer() {
        #expect(
            head([.contentType: "application/json", .contentLength: "2"])
                == "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                + "Date: Fri, 04 Dec 2026 13:22:56 GMT\r\nServer: tw\r\n\r\n")
    }

    @Test func aStreamIsChunkedAndAClosingResponseSaysSo() {
        #expect(
            head([:], framing: .chunked, closing: true, serverName: nil)
                == "HTTP/1.1 404 Not Found\r\nDate: Fri, 04 Dec 2026 13:22:56 GMT\r\n"
                + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    }

    @Test func aHandlersOwnDateServerAndFramingFieldsAreNotDoubled() {
        let text = head([.date: "yesterday", .server: "other", .transferEncoding: "gzip", .connection: "keep-alive"])
        #expect(text == "HTTP/1.1 404 Not Found\r\nDate: yesterday\r\nServer: other\r\n\r\n")
    }

    @Test func aChunkCarriesItsLengthInHex() {
        var buffer = ByteBuffer()
        HTTP1ResponseEncoding.writeChunk(ByteBuffer(string: String(repeating: "x", count: 26)), into: &buffer)
        #expect(String(buffer: buffer) == "1a\r\n" + String(repeating: "x", count: 26) + "\r\n")
    }

    @Test func theDateIsIMFFixdate() {
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(1_796_390_576) == "Fri, 04 Dec 2026 13:22:56 GMT")
    }

    @Test func aRequestTargetGivesItsPathAndQuery() {
        #expect(originFormPath("/v1/threads?x=1") == "/v1/threads?x=1")
        #expect(originFormPath("http://host:8080/healthz") == "/healthz")
        #expect(originFormPath("http://host?x=1") == "/?x=1")
        #expect(originFormPath("http://host") == "/")
        #expect(originFormPath("*") == nil)
        #expect(originFormPath("") == nil)
    }
}
