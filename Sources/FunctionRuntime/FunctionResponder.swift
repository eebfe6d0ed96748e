public import Hummingbird

/// Answers every request of a function process: request id, then errors in
/// the contract's shape, then the route `RouteTable` built for the path and
/// method (404 where there is none).
public struct FunctionResponder: HTTPResponder {
    public typealias Context = FunctionRequestContext

    private let routes: RouteTable.Routes
    private let requestIds = RequestIdMiddleware()
    private let errors = ErrorMiddleware()

    init(routes: RouteTable.Routes) {
        self.routes = routes
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        try await requestIds.handle(request, context: context) { request, context in
            try await errors.handle(request, context: context) { request, context in
                guard let match = routes.match(request.uri.path, method: request.method) else {
                    throw HTTPError(.notFound)
                }
                return try await match.handler(request, context, match.parameters)
            }
        }
    }
}
