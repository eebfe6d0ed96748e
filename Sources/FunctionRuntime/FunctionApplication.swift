public import Hummingbird
import HummingbirdCore
public import Logging
public import ThreadFunctions

/// The HTTP application of a function process: the route table over the
/// registry's functions bound to `dependencies`. It is a swift-service-lifecycle
/// `Service`; run it in a `ServiceGroup` after the Redis pool, so a graceful
/// shutdown stops accepting, lets in-flight requests finish, then closes Redis.
public enum FunctionApplication {
    public typealias App = Application<FunctionResponder>

    public static func make(
        configuration: RuntimeConfiguration,
        authentication: Authentication,
        dependencies: FunctionDependencies,
        metrics: RuntimeMetrics,
        readiness: @escaping @Sendable () async -> Bool,
        logger: Logger,
        registry: [FunctionEntry] = FunctionRegistry.entries
    ) throws(RuntimeConfigurationError) -> App {
        let functions = registry.map { $0.bind(dependencies) }
        let routes = try RouteTable.routes(
            functions: functions, configuration: configuration,
            services: RouteTable.Services(
                metrics: metrics, readiness: readiness, watchThread: WatchThreadHandler(dependencies: dependencies),
                authentication: authentication))
        return application(routes, http: configuration.http, serverName: configuration.serverName, logger: logger)
    }

    /// A process that serves no function, only `/healthz`, `/readyz` and
    /// `/metrics` (the worker): probes and Prometheus reach it like the others.
    public static func makeProbes(
        http: RuntimeConfiguration.HTTP, serverName: String, metrics: RuntimeMetrics,
        readiness: @escaping @Sendable () async -> Bool, liveness: @escaping @Sendable () -> Bool, logger: Logger
    ) -> App {
        application(
            RouteTable.probeRoutes(metrics: metrics, readiness: readiness, liveness: liveness),
            http: http, serverName: serverName, logger: logger)
    }

    private static func application(
        _ routes: RouteTable.Routes, http: RuntimeConfiguration.HTTP, serverName: String, logger: Logger
    ) -> App {
        let responder = FunctionResponder(routes: routes)
        return Application(
            responder: responder,
            // Connections are answered by `FunctionHTTPChannel`, which calls the
            // responder itself; Hummingbird's per-request wrapper, passed here, is
            // not used. `Application` remains the service that runs the server.
            server: HTTPServerBuilder { _ in
                FunctionHTTPChannel(responder: responder, http: http, serverName: serverName, logger: logger)
            },
            configuration: ApplicationConfiguration(
                address: .hostname(http.host, port: http.port),
                serverName: serverName,
                availableConnectionsDelegate: .maximum(http.maximumConnections, logger: logger)),
            logger: logger)
    }
}
