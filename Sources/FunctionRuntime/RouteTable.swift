import Foundation
import Hummingbird
import ThreadFunctions

/// Every HTTP route of a function process, in one place:
///
/// - each function's REST route from `FunctionRegistry` (DESIGN §4),
/// - gateway mode: `POST /function/<name>` (OpenFaaS-style, params in the body),
/// - single-function mode: `POST /` for that function (`GET /` for watch-thread),
/// - always: `GET /healthz`, `GET /readyz`, `GET /metrics`, `GET /openapi.json` (`probeRouter`).
///
/// Functions of kind `.stream` hold their response open and are routed here
/// by hand (`WatchRoute`), not through the generic JSON endpoint.
enum RouteTable {
    struct Services: Sendable {
        var metrics: RuntimeMetrics
        /// True when Redis answers and the Function library is loaded.
        var readiness: @Sendable () async -> Bool
        var watchThread: WatchThreadHandler
        var authentication: Authentication
    }

    static func router(
        functions: [BoundFunction], configuration: RuntimeConfiguration, services: Services
    ) throws(RuntimeConfigurationError) -> Router<FunctionRequestContext> {
        let router = probeRouter(metrics: services.metrics, readiness: services.readiness)

        let reader = InvocationReader(limits: configuration.http)
        let endpoints = functions.filter { $0.entry.kind != .stream }.map {
            FunctionEndpoint(function: $0, reader: reader, authentication: services.authentication, metrics: services.metrics)
        }
        // The one function of kind `.stream` (watch-thread), on its registry route.
        let streams = functions.filter { $0.entry.kind == .stream }.map {
            WatchRoute(
                entry: $0.entry, handler: services.watchThread, authentication: services.authentication,
                metrics: services.metrics)
        }
        switch configuration.mode {
        case .gateway:
            for endpoint in endpoints { addRESTRoute(endpoint, to: router) }
            addInvocationRoute(endpoints, to: router)
            for stream in streams {
                stream.addRoute(to: router)
                refuseOtherMethod(on: stream.entry.route, serving: .get, to: router)
            }
        case .single(let name) where streams.contains(where: { $0.entry.name == name }):
            for stream in streams where stream.entry.name == name {
                stream.addRoute(to: router)
                refuseOtherMethod(on: stream.entry.route, serving: .get, to: router)
                stream.addRootRoute(to: router)
                refuseOtherMethod(on: "/", serving: .get, to: router)
            }
        case .single(let name):
            guard let endpoint = endpoints.first(where: { $0.name == name }) else {
                throw RuntimeConfigurationError(
                    "no function named '\(name)'; valid names: \(functions.map(\.entry.name).joined(separator: ", "))")
            }
            addRESTRoute(endpoint, to: router)
            router.post("/") { request, context in
                await endpoint.respond(to: request, context: context, parameters: [])
            }
            refuseOtherMethod(on: "/", serving: .post, to: router)
        }
        return router
    }

    /// The function's route of DESIGN §4; path parameters become input fields,
    /// and so do query parameters of a query (GET). A command (POST) takes the
    /// rest of its input from the JSON body only, so a query string can never
    /// stand in for a body.
    private static func addRESTRoute(_ endpoint: FunctionEndpoint, to router: Router<FunctionRequestContext>) {
        let entry = endpoint.function.entry
        let method: HTTPRequest.Method = entry.method == .get ? .get : .post
        router.on(RouterPath(entry.route), method: method) { request, context in
            var parameters: [(name: String, value: String)] = entry.pathParameters.compactMap { name in
                context.parameters.get(name).map { (name, $0) }
            }
            if method == .get {
                for (name, value) in request.uri.queryParameters {
                    parameters.append((String(name), String(value)))
                }
            }
            return await endpoint.respond(to: request, context: context, parameters: parameters)
        }
        refuseOtherMethod(on: entry.route, serving: method, to: router)
    }

    /// The methods a path that takes another one answers with 405 (HEAD is left
    /// to the server; QUERY is the safe method with a body, RFC draft).
    private static let refusedMethods: [HTTPRequest.Method] = [
        .get, .post, .put, .patch, .delete, .options, .trace, HTTPRequest.Method("QUERY")!,
    ]

    /// The router alone answers 404 for a known path asked with another
    /// method; the contract's answer is 405 `method_not_allowed`, with the
    /// `Allow` header RFC 9110 requires.
    private static func refuseOtherMethod(
        on route: String, serving method: HTTPRequest.Method, to router: Router<FunctionRequestContext>
    ) {
        for other in refusedMethods where other != method {
            router.on(RouterPath(route), method: other) { _, _ -> Response in
                var response = ErrorResponse.response(for: FunctionError(.methodNotAllowed, "\(route) takes \(method) only"))
                response.headers[.allow] = method.rawValue
                return response
            }
        }
    }

    private static func addInvocationRoute(_ endpoints: [FunctionEndpoint], to router: Router<FunctionRequestContext>) {
        let byName = Dictionary(uniqueKeysWithValues: endpoints.map { ($0.name, $0) })
        router.post("/function/{name}") { request, context in
            let name = context.parameters.get("name") ?? ""
            guard let endpoint = byName[name] else {
                throw FunctionError(.notFound, "no function named '\(name)'")
            }
            return await endpoint.respond(to: request, context: context, parameters: [])
        }
        refuseOtherMethod(on: "/function/{name}", serving: .post, to: router)
    }

    /// The routes every HTTP process serves, the worker's only ones:
    /// `GET /healthz` (`liveness`), `GET /readyz` (`readiness`), `GET /metrics`,
    /// and `GET /openapi.json`, the API's description (no authentication).
    static func probeRouter(
        metrics: RuntimeMetrics, readiness: @escaping @Sendable () async -> Bool,
        liveness: @escaping @Sendable () -> Bool = { true }
    ) -> Router<FunctionRequestContext> {
        let router = Router(context: FunctionRequestContext.self)
        router.add(middleware: RequestIdMiddleware())
        router.add(middleware: ErrorMiddleware())
        router.get("/healthz") { _, _ in
            guard liveness() else { throw FunctionError(.unavailable, "the process is stuck") }
            return jsonResponse(#"{"status":"ok"}"#)
        }
        router.get("/readyz") { _, _ in
            guard await readiness() else {
                throw FunctionError(.unavailable, "Redis is unreachable or the threadweave library is not loaded")
            }
            return jsonResponse(#"{"status":"ready"}"#)
        }
        router.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.exposition())))
        }
        router.get("/openapi.json") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: OpenAPIDocument.body))
        }
        for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
            refuseOtherMethod(on: path, serving: .get, to: router)
        }
        return router
    }

    private static func jsonResponse(_ json: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: json)))
    }
}

public struct RuntimeConfigurationError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
