import HTTPTypes
import Hummingbird
import ThreadDomain

extension HTTPField.Name {
    static let requestId = Self("X-Request-Id")!
    static let idempotencyKey = Self("Idempotency-Key")!
}

/// Echoes the client's `X-Request-Id` (or a generated ULID) on every
/// response, and puts it in the request's log metadata. A client id that is
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
        context.logger[metadataKey: "request_id"] = .string(requestId)
        var response = try await next(request, context)
        response.headers[.requestId] = requestId
        return response
    }

    private static func acceptable(_ requestId: String) -> String? {
        let printable = requestId.utf8.allSatisfy { (0x21...0x7E).contains($0) }
        return printable && (1...128).contains(requestId.utf8.count) ? requestId : nil
    }
}
