import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// A request read whole, with what its connection needs to answer it.
struct HTTPConnectionRequest: Sendable {
    var request: Request
    /// HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`.
    var keepAlive: Bool
    /// HTTP/1.0 has no chunked encoding: a body of unknown length ends with the connection.
    var chunkedEncodingAllowed: Bool
}

/// What an HTTP connection's handler and its task share: the state machine,
/// under a lock. Both run on the connection's event loop, where the lock is
/// never contended; it keeps the state safe should the task run elsewhere.
final class HTTPConnection: Sendable {
    typealias Item = HTTPConnectionItem<HTTPConnectionRequest>
    typealias StateMachine = HTTPConnectionStateMachine<HTTPConnectionRequest, UnsafeContinuation<Item?, Never>>

    let channel: any Channel
    let state: NIOLockedValueBox<StateMachine>

    init(channel: any Channel, idleTimeout: TimeAmount, maximumQueued: Int = 16) {
        self.channel = channel
        self.state = NIOLockedValueBox(StateMachine(maximumQueued: maximumQueued, idleTimeout: idleTimeout, now: .now()))
    }

    /// The next request to answer, in the order they arrived; nil when the connection is done.
    func next() async -> Item? {
        await withUnsafeContinuation { continuation in
            switch state.withLockedValue({ $0.next(continuation, now: .now()) }) {
            case .answer(let item, let resumeReading):
                if resumeReading { channel.read() }
                continuation.resume(returning: item)
            case .wait:
                break
            case .finish:
                continuation.resume(returning: nil)
            }
        }
    }
}

/// Reads HTTP/1.1 requests off a connection, whole, and hands them to the
/// connection's task (`FunctionHTTPChannel`). A body is buffered up to the
/// function limit and one byte more, so the handler refuses it with 413; the
/// rest of such a body, or all of one declared too long, is read and dropped.
final class HTTPConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let connection: HTTPConnection
    private let maximumBodyBytes: Int
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    /// The body outgrew the limit: its request is handed over, the rest is dropped.
    private var droppingBody = false
    private var idleTimer: Scheduled<Void>?

    init(connection: HTTPConnection, maximumBodyBytes: Int) {
        self.connection = connection
        self.maximumBodyBytes = maximumBodyBytes
    }

    func handlerAdded(context: ChannelHandlerContext) {
        checkIdle(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let now = NIODeadline.now()
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = nil
            droppingBody = false
            connection.state.withLockedValue { $0.partRead(now: now, startsRequest: true) }
            if let declared = head.headers.first(name: "content-length").flatMap({ Int($0) }), declared > maximumBodyBytes {
                // Refused unread: the handler answers 413 from the declared length.
                droppingBody = true
                handOver(now: now)
            } else if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(.byteBuffer(ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\n"))), promise: nil)
            }
        case .body(var part):
            connection.state.withLockedValue { $0.partRead(now: now, startsRequest: false) }
            guard !droppingBody else { return }
            if body == nil {
                body = part
            } else {
                body!.writeBuffer(&part)
            }
            if body!.readableBytes > maximumBodyBytes {
                droppingBody = true
                handOver(now: now)
            }
        case .end:
            if droppingBody {
                droppingBody = false
            } else {
                handOver(now: now)
            }
        }
    }

    private func handOver(now: NIODeadline) {
        guard let head else { return }
        self.head = nil
        let item: HTTPConnection.Item
        if let request = Self.request(head, body: body ?? ByteBuffer()) {
            item = .request(
                HTTPConnectionRequest(
                    request: request, keepAlive: head.isKeepAlive,
                    chunkedEncodingAllowed: head.version != .http1_0 && head.version != .http0_9))
        } else {
            item = .malformed
        }
        body = nil
        deliver(item, now: now)
    }

    private func deliver(_ item: HTTPConnection.Item, now: NIODeadline) {
        if case .resume(let waiter, let item) = connection.state.withLockedValue({ $0.received(item, now: now) }) {
            waiter.resume(returning: item)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The decoder's error: the bytes are not HTTP. The task answers 400
        // after any response before it, then closes; nothing more is read.
        if error is HTTPParserError {
            deliver(.malformed, now: .now())
            endInput()
        } else {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        endInput()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            if let waiter = connection.state.withLockedValue({ $0.quiesce() }) { waiter.resume(returning: nil) }
            return
        }
        if case .some(.inputClosed) = event as? ChannelEvent { endInput() }
        context.fireUserInboundEventTriggered(event)
    }

    func read(context: ChannelHandlerContext) {
        if connection.state.withLockedValue({ $0.mayRead() }) { context.read() }
    }

    private func endInput() {
        head = nil
        if let waiter = connection.state.withLockedValue({ $0.inputEnded() }) { waiter.resume(returning: nil) }
    }

    /// Closes an idle connection, or checks again when it could next be idle.
    private func checkIdle(context: ChannelHandlerContext) {
        idleTimer = nil
        switch connection.state.withLockedValue({ $0.idleTimerFired(now: .now()) }) {
        case .close:
            context.close(promise: nil)
        case .checkAgain(let deadline):
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            idleTimer = context.eventLoop.scheduleTask(deadline: deadline) {
                let (handler, context) = loopBound.value
                handler.checkIdle(context: context)
            }
        }
    }

    /// The head as Hummingbird's request, converted field by field without
    /// Foundation (its URL parser cost a request some thousand instructions).
    private static func request(_ head: HTTPRequestHead, body: ByteBuffer) -> Request? {
        guard let method = HTTPRequest.Method(head.method.rawValue) else { return nil }
        var fields = HTTPFields()
        fields.reserveCapacity(head.headers.count)
        var authority: String?
        for (name, value) in head.headers {
            if authority == nil, name.utf8.count == 4, name.lowercased() == "host" {
                authority = value
                continue
            }
            if let fieldName = HTTPField.Name(name) { fields.append(HTTPField(name: fieldName, value: value)) }
        }
        guard let path = originFormPath(head.uri) else { return nil }
        let request = HTTPRequest(method: method, scheme: "http", authority: authority, path: path, headerFields: fields)
        return Request(head: request, body: RequestBody(buffer: body))
    }
}

/// The path and query of a request target: as sent in origin form
/// (`/v1/threads?x=1`); after the authority in absolute form
/// (`http://host/v1/threads`, which a proxy may send); nil for anything else.
func originFormPath(_ target: String) -> String? {
    let bytes = target.utf8
    guard let first = bytes.first else { return nil }
    if first == UInt8(ascii: "/") { return target }
    guard let schemeEnd = target.firstRange(of: "://") else { return nil }
    let afterAuthority = target[schemeEnd.upperBound...]
    guard let slash = afterAuthority.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return "/" }
    let rest = afterAuthority[slash...]
    return rest.first == "?" ? "/" + rest : String(rest)
}
