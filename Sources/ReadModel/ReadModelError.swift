import RedisClient
public import ThreadDomain

/// Failures of the read side: an opaque code, a message safe to show, and the
/// underlying error for the logs.
public struct ReadModelError: ExplainedError, Sendable {
    public enum Code: String, Hashable, Sendable, CustomStringConvertible {
        /// Redis could not be reached or did not answer in time, or a bounded resource is full.
        case unavailable
        /// Stored data (an event, a read-model value) could not be read.
        case corruptData = "corrupt_data"
        /// Redis answered something this code does not expect.
        case unexpectedReply = "unexpected_reply"
        /// A thread's read model is missing events that its stream does not have either.
        case unclosableGap = "unclosable_gap"
        /// Another process holds the lock of a job that must run alone (`rebuild`).
        case locked
        /// A bounded wait (e.g. for `minVersion`) ran out.
        case timeout

        public var description: String { rawValue }
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
}
