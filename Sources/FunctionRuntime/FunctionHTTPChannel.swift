import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import RedisClient

/// An HTTP/1.1 connection of a function process, in place of Hummingbird's
/// `HTTP1Channel`: the same Hummingbird requests and responses, answered by
/// `FunctionResponder`, without the async-sequence bridges between the
/// channel and the task.
///
/// Hummingbird's channel passes every request part through an
/// `NIOAsyncChannel` inbound stream and every response part through its
/// outbound writer: some 72,000 instructions a request, half of a `/healthz`.
/// Here the handler reads a request whole and hands it over once, and the
/// response goes out as one buffer, written from the task on the
/// connection's own event loop.
struct FunctionHTTPChannel: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let connection: HTTPConnection
        var channel: any Channel { connection.channel }
    }

    let responder: FunctionResponder
    let http: RuntimeConfiguration.HTTP
    let serverName: String?
    let logger: Logger

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let connection = HTTPConnection(channel: channel, idleTimeout: .nanoseconds(http.idleTimeout.nanoseconds))
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderFieldSize = 80 * 1024
            limits.maxHeaderListSize = 80 * 1024
            limits.maxHeaderFieldCount = 1000
            try channel.pipeline.syncOperations.addHandler(
                ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: limits)))
            try channel.pipeline.syncOperations.addHandler(
                HTTPConnectionHandler(connection: connection, maximumBodyBytes: http.maximumBodyBytes))
            return Value(connection: connection)
        }
    }

    /// Answers the connection's requests in order, on the connection's event
    /// loop (see `EventLoopTaskExecutor`), until it closes.
    func handle(value: Value, logger: Logger) async {
        let channel = value.channel
        await withTaskExecutorPreference(EventLoopTaskExecutor(channel.eventLoop)) {
            await withTaskCancellationHandler {
                await answer(value.connection)
            } onCancel: {
                channel.close(promise: nil)
            }
        }
        channel.close(promise: nil)
    }

    private func answer(_ connection: HTTPConnection) async {
        var date = HTTPDate()
        while let item = await connection.next() {
            guard case .request(let request) = item else {
                try? await writeBadRequest(connection.channel, date: date.current())
                return
            }
            let context = FunctionRequestContext(source: ApplicationRequestContextSource(channel: connection.channel, logger: self.logger))
            let response: Response
            do {
                response = try await responder.respond(to: request.request, context: context)
            } catch {
                // FunctionResponder answers every error in the contract's shape; this is the last resort.
                logger.error("Unanswered error", metadata: ["error": "\(error)"])
                response = Response(status: .internalServerError)
            }
            let closing = !request.keepAlive || response.headers[.connection]?.lowercased() == "close"
            do {
                try await write(response, to: connection.channel, for: request, closing: closing, date: date.current())
            } catch {
                logger.debug("The response could not be written", metadata: ["error": "\(error)"])
                return
            }
            if closing { return }
        }
    }

    private func write(
        _ response: Response, to channel: any Channel, for request: HTTPConnectionRequest, closing: Bool, date: String
    ) async throws {
        let omitBody = request.request.method == .head
        if let length = response.body.contentLength {
            var head = channel.allocator.buffer(capacity: 256 + (omitBody ? 0 : length))
            HTTP1ResponseEncoding.writeHead(
                status: response.status, fields: response.headers, framing: .length, closing: closing,
                date: date, serverName: serverName, into: &head)
            try await response.body.write(BufferedBodyWriter(channel: channel, buffer: head, omitBody: omitBody, closing: closing))
        } else {
            let framing: HTTP1BodyFraming = request.chunkedEncodingAllowed ? .chunked : .untilClose
            var head = channel.allocator.buffer(capacity: 256)
            HTTP1ResponseEncoding.writeHead(
                status: response.status, fields: response.headers, framing: framing, closing: closing || framing == .untilClose,
                date: date, serverName: serverName, into: &head)
            try await channel.writeAndFlush(head).get()
            try await response.body.write(StreamingBodyWriter(channel: channel, framing: framing, omitBody: omitBody))
            if framing == .untilClose { channel.close(promise: nil) }
        }
    }

    private func writeBadRequest(_ channel: any Channel, date: String) async throws {
        var buffer = channel.allocator.buffer(capacity: 128)
        HTTP1ResponseEncoding.writeHead(
            status: .badRequest, fields: [.contentLength: "0"], framing: .length, closing: true,
            date: date, serverName: serverName, into: &buffer)
        try await channel.writeAndFlush(buffer).get()
    }
}

/// A body of known length: appended to the head's buffer, which goes out in
/// one write when the body finishes. Only a response after which the
/// connection closes waits for the socket, so the close cannot cut it.
private struct BufferedBodyWriter: ResponseBodyWriter {
    let channel: any Channel
    var buffer: ByteBuffer
    let omitBody: Bool
    let closing: Bool

    mutating func write(_ part: ByteBuffer) async throws {
        guard !omitBody else { return }
        var part = part
        buffer.writeBuffer(&part)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        if closing {
            try await channel.writeAndFlush(buffer).get()
        } else {
            channel.writeAndFlush(buffer, promise: nil)
        }
    }
}

/// A body of unknown length (a watch stream): each part is flushed and
/// waited for, so a client that stops reading holds its writer back.
private struct StreamingBodyWriter: ResponseBodyWriter {
    let channel: any Channel
    let framing: HTTP1BodyFraming
    let omitBody: Bool

    mutating func write(_ part: ByteBuffer) async throws {
        guard !omitBody, part.readableBytes > 0 else { return }
        guard framing == .chunked else { return try await channel.writeAndFlush(part).get() }
        var chunk = channel.allocator.buffer(capacity: part.readableBytes + 16)
        HTTP1ResponseEncoding.writeChunk(part, into: &chunk)
        try await channel.writeAndFlush(chunk).get()
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        guard framing == .chunked, !omitBody else { return }
        var end = channel.allocator.buffer(capacity: 8)
        end.writeStaticString(HTTP1ResponseEncoding.lastChunk)
        try await channel.writeAndFlush(end).get()
    }
}
