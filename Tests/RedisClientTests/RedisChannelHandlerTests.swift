import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import RedisClient

/// The channel handler's flushes: commands that several tasks on one loop
/// write in the same pass of the loop leave together, at the end of it.
@Suite struct RedisChannelHandlerTests {
    @Test func writesFlushedInOnePassLeaveTogetherAtItsEnd() async throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(handler: RedisChannelHandler(logger: Logger(label: "test")), loop: loop)
        let batch = ReplyBatch(count: 3)
        for (index, key) in ["a", "b", "c"].enumerated() {
            let request = RedisRequest(command: RedisCommand("GET", key), reply: ReplySlot(batch: batch, index: index), deadline: nil)
            channel.writeAndFlush([request], promise: nil)
        }
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "nothing leaves before the pass ends")

        loop.run()
        var sent = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { sent += String(buffer: buffer) }
        #expect(sent == "*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n*2\r\n$3\r\nGET\r\n$1\r\nc\r\n")

        // Replies still complete the commands in order.
        try channel.writeInbound(ByteBuffer(string: "$1\r\n1\r\n$1\r\n2\r\n$-1\r\n"))
        let replies = await batch.replies {}
        #expect(replies.map { try? $0.get().string } == ["1", "2", nil])
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func aChannelClosedWithAFlushPendingFailsItsCommands() async throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(handler: RedisChannelHandler(logger: Logger(label: "test")), loop: loop)
        let batch = ReplyBatch(count: 1)
        channel.writeAndFlush(
            [RedisRequest(command: RedisCommand("PING"), reply: ReplySlot(batch: batch, index: 0), deadline: nil)], promise: nil)
        channel.close(promise: nil)
        loop.run()
        let replies = await batch.replies {}
        #expect(replies.count == 1 && (try? replies[0].get()) == nil, "its command failed, not left waiting")
        _ = try channel.finish(acceptAlreadyClosed: true)
    }
}
