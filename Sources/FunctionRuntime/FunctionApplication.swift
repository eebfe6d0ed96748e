public import Hummingbird
public import Logging
public import ThreadFunctions

/// The HTTP application of a function process: the route table over the
/// registry's functions bound to `dependencies`. It is a swift-service-lifecycle
/// `Service`; run it in a `ServiceGroup` after the Redis pool, so a graceful
/// shutdown stops accepting, lets in-flight requests finish, then closes Redis.
public enum FunctionApplication {
    public typealias App = Application<RouterResponder<FunctionRequestContext>>

    public static func make(
        configuration: RuntimeConfiguration,
        dependencies: FunctionDependencies,
        metrics: RuntimeMetrics,
        readiness: @escaping @Sendable () async -> Bool,
        logger: Logger,
        registry: [FunctionEntry] = FunctionRegistry.entries
    ) throws(RuntimeConfigurationError) -> App {
        let functions = registry.map { $0.bind(dependencies) }
        let router = try RouteTable.router(
            functions: functions, configuration: configuration,
            services: RouteTable.Services(
                metrics: metrics, readiness: readiness, watchThread: WatchThreadHandler(dependencies: dependencies)))
        return Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: .nanoseconds(configuration.http.idleTimeout.nanoseconds))),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.http.host, port: configuration.http.port),
                serverName: configuration.serverName,
                availableConnectionsDelegate: .maximum(configuration.http.maximumConnections, logger: logger)),
            logger: logger)
    }
}
