import Foundation
import Hummingbird
import Logging
import ThreadFunctions

/// One function behind HTTP: reads the invocation, calls the handler, answers
/// its JSON or the error shape, and records the call in metrics and the log.
struct FunctionEndpoint: Sendable {
    let function: BoundFunction
    let reader: InvocationReader
    let authentication: Authentication
    let metrics: RuntimeMetrics

    var name: String { function.entry.name }

    func respond(
        to request: Request, context: FunctionRequestContext, parameters: [(name: String, value: String)]
    ) async -> Response {
        let started = ContinuousClock.now
        let response: Response
        do throws(FunctionError) {
            // Authentication comes first: an anonymous caller learns nothing about the body's checks.
            let actingAccount = try await authentication.actingAccount(
                authorization: request.headers.value(of: .authorization), queryToken: nil)
            let invocation = try await reader.invocation(of: request, parameters: parameters, actingAccount: actingAccount)
            let functionContext = FunctionContext(
                requestId: context.requestId, logger: context.logger,
                idempotencyKey: request.headers.value(of: .idempotencyKey))
            let output = try await function(invocation, context: functionContext)
            response = Self.response(for: output, created: function.entry.createsResource, ifNoneMatch: request.headers.value(of: .ifNoneMatch))
        } catch {
            response = ErrorResponse.response(for: error)
            logFailure(error, status: response.status, logger: context.logger)
        }
        metrics.recordAnswer(function: name, status: response.status, since: started, logger: context.logger)
        return response
    }

    /// The output's JSON; a thread query's also carries `ETag: "<read-model version>"`,
    /// and a request whose `If-None-Match` names that tag gets 304 with no body.
    static func response(for output: FunctionOutput, created: Bool, ifNoneMatch: String?) -> Response {
        var headers = HTTPFields()
        if let version = output.readModelVersion {
            let tag = "\"\(version)\""
            headers[.eTag] = tag
            if let ifNoneMatch, matches(ifNoneMatch, tag) {
                return Response(status: .notModified, headers: headers)
            }
        }
        headers[.contentType] = "application/json"
        return Response(status: created ? .created : .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: output.json)))
    }

    /// `If-None-Match` is `*` or a list of tags; weak tags (`W/"7"`) match too (RFC 9110 weak comparison).
    private static func matches(_ ifNoneMatch: String, _ tag: String) -> Bool {
        ifNoneMatch.split(separator: ",").contains { candidate in
            let trimmed = candidate.trimmingCharacters(in: .whitespaces)
            return trimmed == "*" || trimmed == tag || trimmed == "W/" + tag
        }
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
