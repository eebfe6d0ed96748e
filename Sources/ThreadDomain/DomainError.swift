/// A rule the command broke. `code` is the stable, machine-readable name from
/// DESIGN §1; `message` is safe to show a client and names the offending id or field.
public struct DomainError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// 400: malformed input, limits exceeded, unknown mentions, unreadable event data.
        public static let invalidRequest = Code(rawValue: "invalid_request")
        /// 409: create-thread on a stream that already exists.
        public static let threadExists = Code(rawValue: "thread_exists")
        /// 404
        public static let threadNotFound = Code(rawValue: "thread_not_found")
        /// 410
        public static let threadDestroyed = Code(rawValue: "thread_destroyed")
        /// 403
        public static let notAdministrator = Code(rawValue: "not_administrator")
        /// 403
        public static let notParticipant = Code(rawValue: "not_participant")
        /// 409: the command would leave the thread without administrators.
        public static let lastAdministrator = Code(rawValue: "last_administrator")
        /// 404: a reply target or removal names no live message of this thread.
        public static let messageNotFound = Code(rawValue: "message_not_found")
        /// 409: a client-supplied message id is already used in this thread.
        public static let messageExists = Code(rawValue: "message_exists")
        /// 403: removing someone else's message without being an administrator.
        public static let notSender = Code(rawValue: "not_sender")

        public var description: String { rawValue }
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public init(_ code: Code, _ message: String) {
        self.init(code: code, message: message)
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
