import NIOCore

/// A command as its arguments, name first. Arguments are bytes, so binary
/// payloads travel unchanged.
public struct RedisCommand: Sendable, Hashable {
    public var arguments: [[UInt8]] {
        didSet { encoded = nil }
    }
    /// The command's RESP bytes, kept by `prepared()` for a command sent
    /// unchanged many times; nil: formatted when sent.
    private(set) var encoded: [UInt8]?

    public init(_ arguments: String...) {
        self.init(arguments)
    }

    public init(_ arguments: [String]) {
        self.arguments = arguments.map { Array($0.utf8) }
    }

    public init(binary arguments: [[UInt8]]) {
        self.arguments = arguments
    }

    public mutating func append(_ argument: String) {
        arguments.append(Array(argument.utf8))
    }

    public mutating func append(binary argument: [UInt8]) {
        arguments.append(argument)
    }

    /// This command with its RESP bytes formatted now, once, instead of at
    /// every send: for a command a loop sends unchanged, such as the
    /// read-model worker's `XREADGROUP` over every partition log (some 140
    /// arguments, each formatted with `sprintf`).
    public func prepared() throws(RedisError) -> RedisCommand {
        var buffer = ByteBuffer()
        try RESPCommandEncoder.encode(self, into: &buffer)
        var prepared = self
        prepared.encoded = buffer.readBytes(length: buffer.readableBytes)
        return prepared
    }

    public static func == (lhs: RedisCommand, rhs: RedisCommand) -> Bool {
        lhs.arguments == rhs.arguments
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(arguments)
    }

    /// The command name (first argument), upper-cased, for logs and metrics;
    /// never the arguments, which may hold user data or secrets.
    public var name: String {
        guard let first = arguments.first else { return "" }
        return String(decoding: first, as: UTF8.self).uppercased()
    }
}

extension Duration {
    /// Whole milliseconds, as Redis takes them (`BLOCK`, `PX`, idle times).
    public var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
