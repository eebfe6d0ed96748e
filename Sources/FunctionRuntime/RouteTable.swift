import Foundation
import Hummingbird
import ThreadFunctions

/// Every HTTP route of a function process, in one place:
///
/// - each function's REST route from `FunctionRegistry` (DESIGN §4),
/// - gateway mode: `POST /function/<name>` (OpenFaaS-style, params in the body),
/// - single-function mode: `POST /` for that function (`GET /` for watch-thread),
/// - always: `GET /healthz`, `GET /readyz`, `GET /metrics`, `GET /openapi.json` (`probeRoutes`).
///
/// Functions of kind `.stream` hold their response open and are routed here
/// by hand (`WatchRoute`), not through the generic JSON endpoint.
enum RouteTable {
    /// What a route runs: the request, its context and the route's `{name}` parameters.
    typealias Handler = @Sendable (Request, FunctionRequestContext, [(name: String, value: Substring)]) async throws -> Response
    typealias Routes = RouteMatcher<Handler>

    struct Services: Sendable {
        var metrics: RuntimeMetrics
        /// True when Redis answers and the Function library is loaded.
        var readiness: @Sendable () async -> Bool
        var watchThread: WatchThreadHandler
        var authentication: Authentication
    }

    static func routes(
        functions: [BoundFunction], configuration: RuntimeConfiguration, services: Services
    ) throws(RuntimeConfigurationError) -> Routes {
        var routes = probeRoutes(metrics: services.metrics, readiness: services.readiness)

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
            for endpoint in endpoints { addRESTRoute(endpoint, to: &routes) }
            addInvocationRoute(endpoints, to: &routes)
            for stream in streams {
                stream.addRoute(to: &routes)
                refuseOtherMethod(on: stream.entry.route, serving: .get, to: &routes)
            }
        case .single(let name) where streams.contains(where: { $0.entry.name == name }):
            for stream in streams where stream.entry.name == name {
                stream.addRoute(to: &routes)
                refuseOtherMethod(on: stream.entry.route, serving: .get, to: &routes)
                stream.addRootRoute(to: &routes)
                refuseOtherMethod(on: "/", serving: .get, to: &routes)
            }
        case .single(let name):
            guard let endpoint = endpoints.first(where: { $0.name == name }) else {
                throw RuntimeConfigurationError(
                    "no function named '\(name)'; valid names: \(functions.map(\.entry.name).joined(separator: ", "))")
            }
            addRESTRoute(endpoint, to: &routes)
            routes.add("/", method: .post) { request, context, _ in
                await endpoint.respond(to: request, context: context, parameters: [])
            }
            refuseOtherMethod(on: "/", serving: .post, to: &routes)
        }
        return routes
    }

    /// The function's route of DESIGN §4; path parameters become input fields,
    /// and so do query parameters of a query (GET). A command (POST) takes the
    /// rest of its input from the JSON body only, so a query string can never
    /// stand in for a body.
    private static func addRESTRoute(_ endpoint: FunctionEndpoint, to routes: inout Routes) {
        let entry = endpoint.function.entry
        let method: HTTPRequest.Method = entry.method == .get ? .get : .post
        routes.add(entry.route, method: method) { request, context, pathParameters in
            var parameters = pathParameters.map { (name: $0.name, value: String($0.value)) }
            if method == .get {
                for (name, value) in request.uri.queryParameters {
                    parameters.append((String(name), String(value)))
                }
            }
            return await endpoint.respond(to: request, context: context, parameters: parameters)
        }
        refuseOtherMethod(on: entry.route, serving: method, to: &routes)
    }

    /// The methods a path that takes another one answers with 405 (HEAD is left
    /// to the server; QUERY is the safe method with a body, RFC draft).
    private static let refusedMethods: [HTTPRequest.Method] = [
        .get, .post, .put, .patch, .delete, .options, .trace, HTTPRequest.Method("QUERY")!,
    ]

    /// A path without a handler for the method answers 404; the contract's
    /// answer for a known path asked with another method is 405
    /// `method_not_allowed`, with the `Allow` header RFC 9110 requires.
    private static func refuseOtherMethod(on route: String, serving method: HTTPRequest.Method, to routes: inout Routes) {
        for other in refusedMethods where other != method {
            routes.add(route, method: other) { _, _, _ -> Response in
                var response = ErrorResponse.response(for: FunctionError(.methodNotAllowed, "\(route) takes \(method) only"))
                response.headers[.allow] = method.rawValue
                return response
            }
        }
    }

    private static func addInvocationRoute(_ endpoints: [FunctionEndpoint], to routes: inout Routes) {
        let byName = Dictionary(uniqueKeysWithValues: endpoints.map { ($0.name, $0) })
        routes.add("/function/{name}", method: .post) { request, context, parameters in
            let name = parameters.first { $0.name == "name" }.map { String($0.value) } ?? ""
            guard let endpoint = byName[name] else {
                throw FunctionError(.notFound, "no function named '\(name)'")
            }
            return await endpoint.respond(to: request, context: context, parameters: [])
        }
        refuseOtherMethod(on: "/function/{name}", serving: .post, to: &routes)
    }

    /// The routes every HTTP process serves, the worker's only ones:
    /// `GET /healthz` (`liveness`), `GET /readyz` (`readiness`), `GET /metrics`,
    /// and `GET /openapi.json`, the API's description (no authentication).
    static func probeRoutes(
        metrics: RuntimeMetrics, readiness: @escaping @Sendable () async -> Bool,
        liveness: @escaping @Sendable () -> Bool = { true }
    ) -> Routes {
        var routes = Routes()
        routes.add("/healthz", method: .get) { _, _, _ in
            guard liveness() else { throw FunctionError(.unavailable, "the process is stuck") }
            return jsonResponse(#"{"status":"ok"}"#)
        }
        routes.add("/readyz", method: .get) { _, _, _ in
            guard await readiness() else {
                throw FunctionError(.unavailable, "Redis is unreachable or the threadweave library is not loaded")
            }
            return jsonResponse(#"{"status":"ready"}"#)
        }
        routes.add("/metrics", method: .get) { _, _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.exposition())))
        }
        routes.add("/openapi.json", method: .get) { _, _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: OpenAPIDocument.body))
        }
        for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
            refuseOtherMethod(on: path, serving: .get, to: &routes)
        }
        return routes
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
