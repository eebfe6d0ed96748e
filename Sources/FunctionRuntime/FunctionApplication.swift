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
        Application(
            responder: FunctionResponder(routes: routes),
            server: HTTPServerBuilder { responder in
                EventLoopBoundChannel(
                    inner: HTTP1Channel(responder: responder, configuration: .init(idleTimeout: .nanoseconds(http.idleTimeout.nanoseconds))))
            },
            configuration: ApplicationConfiguration(
                address: .hostname(http.host, port: http.port),
                serverName: serverName,
                availableConnectionsDelegate: .maximum(http.maximumConnections, logger: logger)),
            logger: logger)
    }
}
