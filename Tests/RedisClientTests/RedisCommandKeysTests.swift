import RedisClient
import Testing

/// Every command knows its keys: what a cluster client routes by.
@Suite struct RedisCommandKeysTests {
    @Test(arguments: [
        (RedisCommand("HGET", "tw:{p01}:rm:thread:A", "version"), ["tw:{p01}:rm:thread:A"]),
        (RedisCommand("XRANGE", "s", "-", "+", "COUNT", "10"), ["s"]),
        (RedisCommand("XINFO", "GROUPS", "tw:{p03}:log"), ["tw:{p03}:log"]),
        (RedisCommand("XGROUP", "CREATE", "tw:{p03}:log", "rmu", "0", "MKSTREAM"), ["tw:{p03}:log"]),
        (RedisCommand("XREADGROUP", "GROUP", "rmu", "c1", "COUNT", "5", "BLOCK", "10", "STREAMS", "a", "b", ">", ">"), ["a", "b"]),
        (RedisCommand("XREAD", "COUNT", "100", "BLOCK", "15000", "STREAMS", "t", "7-0"), ["t"]),
        (RedisCommand("UNLINK", "k1", "k2", "k3"), ["k1", "k2", "k3"]),
        (RedisCommand("PING"), []),
        (RedisCommand("SCAN", "0", "MATCH", "tw:*", "COUNT", "100"), []),
        (RedisCommand("FUNCTION", "LOAD", "REPLACE", "#!lua name=x"), []),
        (RedisCommand("FCALL", "tw_load", "2", "k1", "k2", "0", "m1"), ["k1", "k2"]),
    ])
    func keysOfCommands(command: RedisCommand, keys: [String]) {
        #expect(command.keys == keys)
    }

    @Test func aFunctionCallCountsItsKeys() {
        let call = RedisCommand.fcall("tw_append", keys: ["a", "b", "c"], arguments: ["1", "x"])
        #expect(call == RedisCommand("FCALL", "tw_append", "3", "a", "b", "c", "1", "x"))
        #expect(call.keys == ["a", "b", "c"])
        let readOnly = RedisCommand.fcallReadOnly("tw_version", keys: [])
        #expect(readOnly == RedisCommand("FCALL_RO", "tw_version", "0"))
        let binary = RedisCommand.fcall("tw_save_snapshot", keys: ["s"], binaryArguments: [[0xff, 0x00]])
        #expect(binary.arguments.last == [0xff, 0x00])
        #expect(binary.keys == ["s"])
    }

    @Test func flatRepliesReadAsPairs() {
        let reply = RedisValue.array([.bulkString(Array("a".utf8)), .bulkString(Array("1".utf8)), .bulkString(Array("b".utf8))])
        #expect(reply.pairs.count == 1, "a trailing odd element is dropped")
        #expect(reply.fieldMap == ["a": "1"])
        #expect(RedisValue.array([]).pairs.isEmpty)
        #expect(RedisValue.null.pairs.isEmpty)
    }
}
