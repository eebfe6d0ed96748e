/// Where a command's keys are among its arguments, from the command table of
/// the Redis documentation, for the commands this project sends: what a
/// cluster client needs to route any command by slot. Commands not listed
/// are keyless (PING, SCAN, FUNCTION, AUTH, INFO, CONFIG, …).
extension RedisCommand {
    /// The keys this command touches, in order.
    public var keys: [String] {
        let texts = (0..<argumentCount).map { String(decoding: argument(at: $0), as: UTF8.self) }
        guard let name = texts.first?.uppercased() else { return [] }
        switch name {
        case "FCALL", "FCALL_RO", "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO":
            // FCALL function numkeys key…
            guard texts.count > 2, let count = Int(texts[2]), count >= 0, texts.count >= 3 + count else { return [] }
            return Array(texts[3..<(3 + count)])
        case "XREAD", "XREADGROUP":
            // … STREAMS key… id…: the keys are the first half after STREAMS.
            guard let streams = texts.firstIndex(where: { $0.uppercased() == "STREAMS" }) else { return [] }
            let rest = texts[(streams + 1)...]
            return Array(rest.prefix(rest.count / 2))
        case "DEL", "UNLINK", "EXISTS", "MGET", "TOUCH", "WATCH":
            return Array(texts.dropFirst())
        case "XINFO", "XGROUP", "OBJECT", "MEMORY":
            // Subcommand first: XINFO GROUPS key, XGROUP CREATE key …, MEMORY USAGE key.
            return texts.count > 2 && texts[1].uppercased() != "HELP" ? [texts[2]] : []
        case "PING", "ECHO", "AUTH", "SELECT", "HELLO", "QUIT", "SCAN", "INFO", "CONFIG", "CLIENT", "FUNCTION", "SCRIPT",
            "CLUSTER", "COMMAND", "DBSIZE", "FLUSHALL", "FLUSHDB", "TIME", "WAIT", "MULTI", "EXEC", "DISCARD", "ASKING",
            "READONLY", "READWRITE", "SUBSCRIBE", "PUBLISH", "LASTSAVE", "BGSAVE", "BGREWRITEAOF", "SHUTDOWN", "DEBUG":
            return []
        default:
            // The common shape: COMMAND key … (GET, SET, HGET, HSET, XADD, XRANGE, ZADD, XACK, XAUTOCLAIM, …).
            return texts.count > 1 ? [texts[1]] : []
        }
    }

    /// `FCALL function numkeys key… argument…`, with `numkeys` counted.
    public static func fcall(_ function: String, keys: [String], arguments: [String] = []) -> RedisCommand {
        functionCall("FCALL", function, keys: keys, arguments: arguments)
    }

    /// `FCALL` with byte arguments after the keys (snapshots, stream fields).
    public static func fcall(_ function: String, keys: [String], binaryArguments: [[UInt8]]) -> RedisCommand {
        var command = fcall(function, keys: keys)
        command.reserve(arguments: binaryArguments.count, bytes: binaryArguments.reduce(0) { $0 + $1.count })
        for argument in binaryArguments { command.append(binary: argument) }
        return command
    }

    /// `FCALL_RO`: a read-only Function call, which replicas may serve.
    public static func fcallReadOnly(_ function: String, keys: [String], arguments: [String] = []) -> RedisCommand {
        functionCall("FCALL_RO", function, keys: keys, arguments: arguments)
    }

    /// Built in place: no array of every argument first.
    private static func functionCall(_ call: String, _ function: String, keys: [String], arguments: [String]) -> RedisCommand {
        var command = RedisCommand()
        command.reserve(
            arguments: 3 + keys.count + arguments.count,
            bytes: 16 + function.utf8.count + keys.reduce(0) { $0 + $1.utf8.count } + arguments.reduce(0) { $0 + $1.utf8.count })
        command.append(call)
        command.append(function)
        command.append(String(keys.count))
        for key in keys { command.append(key) }
        for argument in arguments { command.append(argument) }
        return command
    }
}
