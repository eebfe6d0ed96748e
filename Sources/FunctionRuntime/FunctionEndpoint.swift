import Foundation
import Hummingbird
import Logging
import ThreadFunctions

/// One function behind HTTP: reads the invocation, calls the handler, answers
/// its JSON or the error shape, and records the call in metrics and the log.
struct FunctionEndpoint: Sendable {
    /// Functions whose success creates something answer 201 instead of 200 (DESIGN §4).
    static let answeringCreated: Set<String> = [CreateThreadHandler.name]

    let function: BoundFunction
    let reader: InvocationReader
    let metrics: RuntimeMetrics

    var name: String { function.entry.name }

    func respond(
        to request: Request, context: FunctionRequestContext, parameters: [(name: String, value: String)]
    ) async -> Response {
        let started = ContinuousClock.now
        let response: Response
        do throws(FunctionError) {
            let payload = try await reader.payload(of: request, parameters: parameters)
            let functionContext = FunctionContext(
                requestId: context.requestId, logger: context.logger,
                idempotencyKey: request.headers[.idempotencyKey])
            let output = try await function(payload, context: functionContext)
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            response = Response(
                status: Self.answeringCreated.contains(name) ? .created : .ok, headers: headers,
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: output)))
        } catch {
            response = ErrorResponse.response(for: error)
            logFailure(error, status: response.status, logger: context.logger)
        }
        let elapsed = ContinuousClock.now - started
        metrics.recordRequest(function: name, status: response.status.code, duration: elapsed)
        context.logger.info(
            "function answered",
            metadata: [
                "function": "\(name)", "status": "\(response.status.code)",
                "duration_ms": "\(Double(elapsed.nanoseconds) / 1_000_000)",
            ])
        return response
    }

    private func logFailure(_ error: FunctionError, status: HTTPResponse.Status, logger: Logger) {
        var metadata: Logger.Metadata = ["function": "\(name)", "code": "\(error.code)", "message": "\(error.message)"]
        if let underlying = error.underlying { metadata["error"] = "\(underlying)" }
        switch status.kind {
        case .serverError: logger.error("function failed", metadata: metadata)
        default: logger.debug("function refused the request", metadata: metadata)
        }
    }
}
