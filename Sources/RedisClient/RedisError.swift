/// Every failure the client reports. `message` is safe to log: it never holds
/// a password or command arguments.
public struct RedisError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as an open set of codes (compare with `==`).
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case invalidURL, invalidConfiguration, connectionFailed, authenticationFailed, tlsHandshakeFailed
            case connectionClosed, timeout, server, protocolError, shutdown, cancelled, functionNotLoaded
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The configuration URL could not be parsed.
        public static let invalidURL = Code(.invalidURL)
        /// A setting other than the URL is unusable, e.g. a TLS file that cannot be read.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// No connection could be established (refused, unreachable, connect timeout, AUTH/SELECT refused).
        public static let connectionFailed = Code(.connectionFailed)
        /// Redis refused the credentials (AUTH failed). A process stops at start on it rather than
        /// retry (retrying cannot fix a password); later, e.g. mid-rotation, requests answer 503.
        public static let authenticationFailed = Code(.authenticationFailed)
        /// The TLS handshake failed (certificate not trusted, name mismatch); treated as the above.
        public static let tlsHandshakeFailed = Code(.tlsHandshakeFailed)
        /// The connection went away while the command was in flight, or was already closed.
        public static let connectionClosed = Code(.connectionClosed)
        /// The command got no reply within its timeout; its connection has been closed.
        public static let timeout = Code(.timeout)
        /// Redis answered with an error reply; `message` is the server's full text.
        public static let server = Code(.server)
        /// The bytes from the server were not valid RESP; the connection has been closed.
        public static let protocolError = Code(.protocolError)
        /// The pool has been shut down.
        public static let shutdown = Code(.shutdown)
        /// The waiting task was cancelled during a command without timeout; its connection has been closed.
        public static let cancelled = Code(.cancelled)
        /// A Function the command calls is not loaded, and this Redis user may not load it
        /// (the ACL refuses `FUNCTION LOAD`): unavailable until `threadweave setup` has run.
        public static let functionNotLoaded = Code(.functionNotLoaded)

        public var description: String { base.rawValue }
    }

    public var code: Code
    /// Safe text; for `.server` the full server error text, e.g. "NOSCRIPT No matching script...".
    public var message: String
    public var underlying: (any Error)?

    public init(code: Code, message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    /// The leading word of a server error reply ("ERR", "WRONGTYPE", "NOSCRIPT", …), when `code == .server`.
    public var serverErrorPrefix: String? {
        guard code == .server else { return nil }
        return message.split(separator: " ", maxSplits: 1).first.map(String.init)
    }

    /// `NOPERM`: the user's ACL does not allow the command or one of its keys.
    public var isPermissionDenied: Bool { serverErrorPrefix == "NOPERM" }

    /// Server error replies that report a passing state of the server, not a
    /// fault of the command: it was refused before it ran, so it wrote nothing
    /// and may be sent again once the state has passed.
    public static let transientServerStates: Set<String> = [
        "LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY", "MISCONF", "OOM", "NOREPLICAS",
    ]

    /// The server or the way to it is unavailable for now: no connection, a
    /// lost or timed-out one, or a transient server state. Callers answer
    /// "unavailable" (HTTP 503), never an internal error.
    public var isTransient: Bool {
        switch code {
        case .connectionFailed, .authenticationFailed, .tlsHandshakeFailed, .connectionClosed, .timeout, .shutdown,
            .functionNotLoaded:
            true
        // A full server (`maxclients`) answers a new connection's first command so, then closes it.
        case .server: serverErrorPrefix.map(Self.transientServerStates.contains) ?? false || message.hasPrefix("ERR max number of clients")
        default: false
        }
    }

    public var description: String {
        if let underlying {
            return "RedisError.\(code): \(message) (\(underlying))"
        }
        return "RedisError.\(code): \(message)"
    }
}
