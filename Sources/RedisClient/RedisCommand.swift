import NIOCore

/// A command as its arguments, name first. Arguments are bytes, so binary
/// payloads travel unchanged. They are kept back to back in one buffer: an
/// array per argument was most of a request's allocations (callgrind: 39 of
/// 238 a post), and the encoder hands hiredis pointers into it as it is.
public struct RedisCommand: Sendable, Hashable {
    /// Every argument's bytes, one after another.
    private(set) var storage: [UInt8] = []
    /// Where each argument ends in `storage`.
    private(set) var ends: [Int] = []
    /// The command's RESP bytes, kept by `prepared()` for a command sent
    /// unchanged many times; nil: formatted when sent.
    private(set) var encoded: [UInt8]?

    public init(_ arguments: String...) {
        self.init(arguments)
    }

    public init(_ arguments: [String]) {
        reserve(arguments: arguments.count, bytes: arguments.reduce(0) { $0 + $1.utf8.count })
        for argument in arguments { append(argument) }
    }

    public init(binary arguments: [[UInt8]]) {
        reserve(arguments: arguments.count, bytes: arguments.reduce(0) { $0 + $1.count })
        for argument in arguments { append(binary: argument) }
    }

    public mutating func append(_ argument: String) {
        storage.append(contentsOf: argument.utf8)
        ends.append(storage.count)
        encoded = nil
    }

    public mutating func append(binary argument: [UInt8]) {
        storage.append(contentsOf: argument)
        ends.append(storage.count)
        encoded = nil
    }

    mutating func reserve(arguments: Int, bytes: Int) {
        ends.reserveCapacity(ends.count + arguments)
        storage.reserveCapacity(storage.count + bytes)
    }

    public var argumentCount: Int { ends.count }

    public func argument(at index: Int) -> ArraySlice<UInt8> {
        storage[(index == 0 ? 0 : ends[index - 1])..<ends[index]]
    }

    /// Each argument as an array of its own: for tests and cold paths.
    public var arguments: [[UInt8]] {
        ends.indices.map { Array(argument(at: $0)) }
    }

    /// This command with its RESP bytes formatted now, once, instead of at
    /// every send: for a command a loop sends unchanged, such as the
    /// read-model worker's `XREADGROUP` over every partition log (some 140
    /// arguments).
    public func prepared() throws(RedisError) -> RedisCommand {
        var buffer = ByteBuffer()
        try RESPCommandEncoder.encode(self, into: &buffer)
        var prepared = self
        prepared.encoded = buffer.readBytes(length: buffer.readableBytes)
        return prepared
    }

    public static func == (lhs: RedisCommand, rhs: RedisCommand) -> Bool {
        lhs.ends == rhs.ends && lhs.storage == rhs.storage
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(ends)
        hasher.combine(storage)
    }

    /// The command name (first argument), upper-cased, for logs and metrics;
    /// never the arguments, which may hold user data or secrets.
    public var name: String {
        guard !ends.isEmpty else { return "" }
        return String(decoding: argument(at: 0), as: UTF8.self).uppercased()
    }
}

extension Duration {
    /// Whole milliseconds, as Redis takes them (`BLOCK`, `PX`, idle times).
    public var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
