import HTTPTypes
import Hummingbird
public import Logging
import ThreadDomain

extension HTTPField.Name {
    static let requestId = Self("X-Request-Id")!
    static let idempotencyKey = Self("Idempotency-Key")!
}

/// The request a task is serving, for what it logs.
public enum RequestScope {
    @TaskLocal public static var requestId: String?
}

extension Logger.MetadataProvider {
    /// `request_id` on each line logged while a request is served, read from
    /// `RequestScope` when a line is written. Setting it on the request's
    /// logger instead copied the logger's metadata on every request (5,600
    /// instructions of a get-thread) for lines that are rarely written.
    public static let requestId = Logger.MetadataProvider {
        RequestScope.requestId.map { ["request_id": .string($0)] } ?? [:]
    }
}

/// Echoes the client's `X-Request-Id` (or a generated ULID) on every
/// response, and serves the request in its `RequestScope`. A client id that is
/// too long or has non-printable characters is replaced, so logs stay clean.
struct RequestIdMiddleware: RouterMiddleware {
    typealias Context = FunctionRequestContext
    private let random = RandomReserve()

    func handle(
        _ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response
    ) async throws -> Response {
        var random = random
        let requestId = request.headers.value(of: .requestId).flatMap(Self.acceptable) ?? ULID.generate(using: &random).rawValue
        var context = context
        context.requestId = requestId
        var response = try await RequestScope.$requestId.withValue(requestId) { try await next(request, context) }
        response.headers[.requestId] = requestId
        return response
    }

    private static func acceptable(_ requestId: String) -> String? {
        let printable = requestId.utf8.allSatisfy { (0x21...0x7E).contains($0) }
        return printable && (1...128).contains(requestId.utf8.count) ? requestId : nil
    }
}
