/// The shape of every module's error: an opaque code, a message safe to show
/// a client, and the underlying error for the logs. Its description is the
/// whole chain, so a log line names the Redis error behind a 500.
public protocol ExplainedError: Error, CustomStringConvertible {
    associatedtype Code: CustomStringConvertible
    var code: Code { get }
    var message: String { get }
    var underlying: (any Error)? { get }
}

extension ExplainedError {
    public var description: String {
        if let underlying { return "\(code): \(message) (\(underlying))" }
        return "\(code): \(message)"
    }
}
