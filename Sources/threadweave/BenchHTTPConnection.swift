import NIOCore
import NIOHTTP1
import NIOPosix

/// One keep-alive HTTP/1.1 connection of `threadweave bench --url`: a load
/// generator compiled with the service, so that an open-loop run holds its
/// schedule at rates a scripted sender cannot on the same two cores. Each
/// writer owns one connection and sends one request at a time.
struct BenchHTTPConnection: Sendable {
    struct Response: Sendable {
        var status: Int
        var body: ByteBuffer
    }

    private let channel: any Channel
    private let hostHeader: String

    /// Connects on `group` (an event loop, to keep several connections on one thread).
    static func connect(host: String, port: Int, on group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> Self {
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ExchangeHandler())
                }
            }
            .connect(host: host, port: port).get()
        return Self(channel: channel, hostHeader: "\(host):\(port)")
    }

    func send(_ method: HTTPMethod, _ path: String, json: [UInt8]) async throws -> Response {
        try await exchange(method, path, json: json).get()
    }

    /// Sends a request; the answer completes on the connection's event loop.
    func exchange(_ method: HTTPMethod, _ path: String, json: [UInt8]) -> EventLoopFuture<Response> {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: hostHeader)
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: String(json.count))
        let answer = channel.eventLoop.makePromise(of: Response.self)
        // A write refused before it reached the handler (the channel closed) never queues the answer.
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { answer.fail($0) }
        channel.writeAndFlush(Exchange(head: head, body: ByteBuffer(bytes: json), answer: answer), promise: written)
        return answer.futureResult
    }

    func close() async {
        try? await channel.close()
    }
}

/// A request and the promise of its response, answered in the order sent.
private struct Exchange: Sendable {
    var head: HTTPRequestHead
    var body: ByteBuffer
    var answer: EventLoopPromise<BenchHTTPConnection.Response>
}

private final class ExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Exchange
    typealias OutboundOut = HTTPClientRequestPart

    private var waiting = CircularBuffer<EventLoopPromise<BenchHTTPConnection.Response>>()
    private var status = 0
    private var body = ByteBuffer()

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        waiting.append(exchange.answer)
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(exchange.body))), promise: nil)
        context.write(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            body.clear()
        case .body(var part):
            body.writeBuffer(&part)
        case .end:
            guard let answer = waiting.popFirst() else { return }
            answer.succeed(.init(status: status, body: body))
            body = ByteBuffer()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        while let answer = waiting.popFirst() { answer.fail(error) }
    }
}
