/// A command as its arguments, name first. Arguments are bytes, so binary
/// payloads travel unchanged.
public struct RedisCommand: Sendable, Hashable {
    public var arguments: [[UInt8]]

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
