import Foundation
public import Hummingbird
import Logging
public import ThreadFunctions

/// The error shape of DESIGN §4, `{"error":{"code","message"}}`, and the one
/// table from error codes to HTTP statuses. Every error response of the
/// runtime is made here.
public enum ErrorResponse {
    public static func status(for code: FunctionError.Code) -> HTTPResponse.Status {
        // No `default`: a new code does not compile until it has its status here.
        switch code {
        case .invalidRequest: .badRequest
        case .unauthenticated: .unauthorized
        case .notAdministrator, .notParticipant, .notSender, .accountMismatch: .forbidden
        case .threadNotFound, .messageNotFound, .notFound: .notFound
        case .methodNotAllowed: .methodNotAllowed
        case .threadExists, .lastAdministrator, .conflict, .messageExists, .idempotencyKeyReused: .conflict
        case .threadDestroyed: .gone
        case .payloadTooLarge: .contentTooLarge
        case .unsupportedMediaType: .unsupportedMediaType
        case .tooManyStreams: .tooManyRequests
        case .unavailable: .serviceUnavailable
        case .timeout: .gatewayTimeout
        case .internalError: .internalServerError
        }
    }

    public static func response(for error: FunctionError) -> Response {
        let status = status(for: error.code)
        // A 500's own text may describe internals: clients get a fixed sentence, the logs get the rest.
        let code = status == .internalServerError ? FunctionError.Code.internalError : error.code
        let message = status == .internalServerError ? "internal error" : error.message
        let body = Body(error: .init(code: code.rawValue, message: message))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = (try? encoder.encode(body)) ?? Data(#"{"error":{"code":"internal_error","message":"internal error"}}"#.utf8)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if status == .serviceUnavailable || status == .tooManyRequests { headers[.retryAfter] = "1" }
        if error.code == .unauthenticated { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Any error thrown below the edge, as a function error: ours pass through,
    /// Hummingbird's keep their status, anything else is an internal error.
    public static func functionError(for error: any Error) -> FunctionError {
        switch error {
        case let error as FunctionError:
            return error
        case let error as any HTTPResponseError:
            switch error.status {
            case .notFound: return FunctionError(.notFound, "no route for this path", underlying: error)
            case .methodNotAllowed: return FunctionError(.methodNotAllowed, "this path does not take this method", underlying: error)
            case .contentTooLarge: return FunctionError(.payloadTooLarge, "the body exceeds the maximum size", underlying: error)
            case .unsupportedMediaType: return FunctionError(.unsupportedMediaType, "the body must be application/json", underlying: error)
            default:
                let code: FunctionError.Code = error.status.kind == .clientError ? .invalidRequest : .internalError
                return FunctionError(code, "the request could not be handled", underlying: error)
            }
        default:
            return FunctionError(.internalError, "internal error", underlying: error)
        }
    }

    private struct Body: Encodable {
        struct Detail: Encodable {
            var code: String
            var message: String
        }
        var error: Detail
    }
}

/// Turns anything a route throws into the error shape, so no response ever
/// carries Hummingbird's (or anyone's) own error text.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = FunctionRequestContext

    func handle(
        _ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let functionError = ErrorResponse.functionError(for: error)
            let response = ErrorResponse.response(for: functionError)
            let level: Logger.Level = response.status.kind == .serverError ? .error : .debug
            context.logger.log(
                level: level, "request failed",
                metadata: [
                    "path": "\(request.uri.path)", "status": "\(response.status.code)", "code": "\(functionError.code)",
                    "error": "\(functionError.underlying.map { "\($0)" } ?? functionError.message)",
                ])
            return response
        }
    }
}
