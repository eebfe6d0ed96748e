import NIOCore
import Testing

@testable import RedisClient

@Suite struct RESPCodecTests {
    @Test func encoderIsBinarySafe() throws {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        try RESPCommandEncoder.encode(RedisCommand(binary: [Array("SET".utf8), [0, 13, 10], []]), into: &buffer)
        let expected = Array("*3\r\n$3\r\nSET\r\n$3\r\n".utf8) + [0, 13, 10] + Array("\r\n$0\r\n\r\n".utf8)
        #expect(buffer.readBytes(length: buffer.readableBytes) == expected)
    }

    @Test func argumentsThatAreAllEmptyStillEncode() throws {
        var buffer = ByteBufferAllocator().buffer(capacity: 16)
        try RESPCommandEncoder.encode(RedisCommand("", ""), into: &buffer)
        #expect(buffer.readBytes(length: buffer.readableBytes) == Array("*2\r\n$0\r\n\r\n$0\r\n\r\n".utf8))
    }

    /// One buffer holds every argument: each reads back as it went in, however built.
    @Test func argumentsReadBackAsAppended() {
        var command = RedisCommand("HSET", "key")
        command.append(binary: [0, 0xff])
        command.append("")
        command.append("é")
        #expect(command.argumentCount == 5)
        #expect(command.arguments == [Array("HSET".utf8), Array("key".utf8), [0, 0xff], [], Array("é".utf8)])
        #expect(Array(command.argument(at: 2)) == [0, 0xff])
        #expect(command == RedisCommand(binary: command.arguments))
        #expect(RedisCommand("GET", "ab") != RedisCommand("GET", "a", "b"), "the same bytes split otherwise are another command")
        #expect(Set([RedisCommand("GET", "ab"), RedisCommand("GET", "a", "b")]).count == 2)
        #expect(command.name == "HSET")
    }

    @Test func encoderRefusesAnEmptyCommand() {
        var buffer = ByteBufferAllocator().buffer(capacity: 8)
        #expect(throws: RedisError.self) { try RESPCommandEncoder.encode(RedisCommand(binary: []), into: &buffer) }
        #expect(buffer.readableBytes == 0)
    }

    @Test func readerAssemblesRepliesSplitAcrossReads() throws {
        let reader = RESPReplyReader()
        let wire = "*4\r\n:42\r\n$3\r\na\0b\r\n$-1\r\n+OK\r\n-ERR boom\r\n"
        let bytes = Array(wire.utf8)
        try reader.feed(ByteBuffer(bytes: bytes[..<7]))
        #expect(try reader.nextReply() == nil)
        try reader.feed(ByteBuffer(bytes: bytes[7...]))
        let first = try #require(try reader.nextReply())
        #expect(
            try first.get()
                == .array([.integer(42), .bulkString([97, 0, 98]), .null, .simpleString("OK")]))
        let second = try #require(try reader.nextReply())
        guard case .failure(let error) = second else {
            Issue.record("an error reply must be a failure")
            return
        }
        #expect(error.code == .server && error.message == "ERR boom" && error.serverErrorPrefix == "ERR")
        #expect(try reader.nextReply() == nil)
    }

    @Test func nestedErrorFailsTheWholeReply() throws {
        let reader = RESPReplyReader()
        try reader.feed(ByteBuffer(string: "*2\r\n+OK\r\n-WRONGTYPE nope\r\n"))
        let reply = try #require(try reader.nextReply())
        guard case .failure(let error) = reply else { return #expect(Bool(false)) }
        #expect(error.serverErrorPrefix == "WRONGTYPE")
    }

    @Test func malformedInputIsAProtocolError() throws {
        let reader = RESPReplyReader()
        try reader.feed(ByteBuffer(string: "?what\r\n"))
        let error = #expect(throws: RedisError.self) { try reader.nextReply() }
        #expect(error?.code == .protocolError)
    }

    /// A prepared command sends the bytes the formatter gives it, and stops
    /// using them once its arguments change.
    @Test func preparedCommandsSendTheirFormattedBytes() throws {
        let command = RedisCommand(["XREADGROUP", "GROUP", "g", "c", "STREAMS"] + (0..<64).map { "log:\($0)" } + Array(repeating: ">", count: 64))
        var fresh = ByteBuffer()
        try RESPCommandEncoder.encode(command, into: &fresh)
        let prepared = try command.prepared()
        #expect(prepared == command)
        var fromPrepared = ByteBuffer()
        try RESPCommandEncoder.encode(prepared, into: &fromPrepared)
        #expect(fromPrepared == fresh)
        var changed = prepared
        changed.append("extra")
        var fromChanged = ByteBuffer()
        try RESPCommandEncoder.encode(changed, into: &fromChanged)
        #expect(fromChanged.readableBytes > fresh.readableBytes)
        #expect(String(buffer: fromChanged).hasSuffix("$5\r\nextra\r\n"))
        #expect(String(buffer: fromChanged).hasPrefix("*134\r\n"))
        #expect(throws: RedisError.self) { try RedisCommand(binary: []).prepared() }
    }

    @Test func valueConveniences() {
        #expect(RedisValue.bulkString(Array("12".utf8)).int == 12)
        #expect(RedisValue.simpleString("OK").string == "OK")
        #expect(RedisValue.bulkString([0xff]).string == nil)
        #expect(RedisValue.bulkString([0xff]).bytes == [0xff])
        #expect(RedisValue.null.isNull && !RedisValue.integer(0).isNull)
        #expect(RedisValue.array([.integer(1)]).array == [.integer(1)])
        #expect(RedisValue.integer(1).string == nil)
        #expect(RedisCommand("get", "k").name == "GET")
    }

    /// Invalid UTF-8 is no text, including sequences that decoding would
    /// repair into a replacement character of the same length.
    @Test(arguments: [
        [0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf0, 0x90, 0x80], [0x61, 0xe2, 0x82], [0xef, 0xbf],
    ] as [[UInt8]])
    func invalidUTF8IsNoString(_ bytes: [UInt8]) {
        #expect(RedisValue.bulkString(bytes).string == nil)
    }

    @Test(arguments: ["", "plain", "caf\u{e9}", "\u{fffd} is a real replacement character", "\u{1f600}", "nul\u{0}inside"])
    func validUTF8IsItsString(_ text: String) {
        #expect(RedisValue.bulkString(Array(text.utf8)).string == text)
    }
}
