public import Logging
public import ThreadDomain

/// What a function is, for routing, metrics and deployment.
public enum FunctionKind: String, Sendable, Hashable, Codable {
    case command, query, stream
}

/// Everything a handler may know about its invocation — no HTTP.
public struct FunctionContext: Sendable {
    public var requestId: String
    public var logger: Logger
    /// The client's `Idempotency-Key` header, if any (a body `commandId` wins over nothing, never over the header).
    public var idempotencyKey: String?

    public init(requestId: String, logger: Logger, idempotencyKey: String? = nil) {
        self.requestId = requestId
        self.logger = logger
        self.idempotencyKey = idempotencyKey
    }
}

/// One serverless-style function: `handle(input, context) -> output`, with
/// no transport inside. Adapters give it a REST route, `POST /function/<name>`
/// and `POST /`. `Input` decodes from one JSON object carrying the route's path
/// and query parameters as fields plus the body's fields.
public protocol ThreadFunction: Sendable {
    associatedtype Input: Decodable & Sendable
    associatedtype Output: Encodable & Sendable

    static var name: String { get }
    static var kind: FunctionKind { get }
    /// True for a function whose success creates something: the edge answers 201 (DESIGN §4).
    static var createsResource: Bool { get }

    func handle(_ input: Input, context: FunctionContext) async throws(FunctionError) -> Output
}

extension ThreadFunction {
    public static var createsResource: Bool { false }
}

/// A function failure: an opaque code (the `error.code` of DESIGN §4), a
/// message safe to show a client, and the underlying error for the logs.
/// HTTP statuses are assigned only at the edge.
public struct FunctionError: ExplainedError, Sendable {
    public typealias Code = ErrorCode

    public var code: Code
    public var message: String
    public var underlying: (any Error)?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }
}
