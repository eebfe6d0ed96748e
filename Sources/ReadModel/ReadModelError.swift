import RedisClient

/// Failures of the read side: an opaque code, a message safe to show, and the
/// underlying error for the logs.
public struct ReadModelError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// Redis could not be reached or did not answer in time.
        public static let unavailable = Code("unavailable")
        /// Stored data (an event, a read-model value) could not be read.
        public static let corruptData = Code("corrupt_data")
        /// Redis answered something this code does not expect.
        public static let unexpectedReply = Code("unexpected_reply")
        /// A thread's read model is missing events that its stream does not have either.
        public static let unclosableGap = Code("unclosable_gap")
        /// Another process holds the lock of a job that must run alone (`rebuild`).
        public static let locked = Code("locked")
        /// A bounded wait (e.g. for `minVersion`) ran out.
        public static let timeout = Code("timeout")
    }

    public var code: Code
    public var message: String
    public var underlying: (any Error)?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    init(redisError: RedisError, command: String) {
        if redisError.isTransient {
            self.init(.unavailable, "Redis is unavailable", underlying: redisError)
        } else {
            self.init(.unexpectedReply, "Redis refused \(command): \(redisError.message)", underlying: redisError)
        }
    }

    static func unexpected(_ reply: RedisValue, in call: String) -> ReadModelError {
        ReadModelError(.unexpectedReply, "unexpected reply from \(call)")
    }

    public var description: String {
        if let underlying { return "\(code): \(message) (\(underlying))" }
        return "\(code): \(message)"
    }
}
