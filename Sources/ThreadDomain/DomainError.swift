/// A rule the command broke. `code` is the stable, machine-readable name from
/// DESIGN §1; `message` is safe to show a client and names the offending id or field.
public struct DomainError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The domain raises only the rule codes of `ErrorCode`.
    public typealias Code = ErrorCode

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
