import ArgumentParser
import EventStore
import Foundation
import FunctionRuntime
import Logging
import RedisClient
import ServiceLifecycle

/// `--host` and `--port` of the subcommands that serve HTTP (DESIGN §5:
/// `--port`, else `$PORT`, else 8080; the host default depends on the subcommand).
struct HTTPOptions: ParsableArguments {
    @Option(help: "Address to listen on (default 127.0.0.1 for serve, 0.0.0.0 for function).")
    var host: String?

    @Option(help: "Port to listen on (env PORT, default 8080).")
    var port: Int?

    @Option(
        help: """
            HTTP connections open at once, watch streams included (env HTTP_MAX_CONNECTIONS, default 10000); \
            past it new ones wait in the listen backlog.
            """)
    var maxConnections: Int?

    func configuration(defaultHost: String) throws -> RuntimeConfiguration.HTTP {
        let resolvedPort = try Self.integer(port, orEnvironment: "PORT") ?? 8080
        guard (0...65_535).contains(resolvedPort) else { throw ValidationError("port \(resolvedPort) is out of range") }
        var configuration = RuntimeConfiguration.HTTP(host: host ?? defaultHost, port: resolvedPort)
        if let maximum = try Self.integer(maxConnections, orEnvironment: "HTTP_MAX_CONNECTIONS") {
            guard maximum >= 1 else { throw ValidationError("--max-connections must be at least 1") }
            configuration.maximumConnections = maximum
        }
        return configuration
    }

    /// The option, else the environment variable when set and not empty, as an integer.
    private static func integer(_ option: Int?, orEnvironment name: String) throws -> Int? {
        if let option { return option }
        guard let text = ProcessInfo.processInfo.environment[name], !text.isEmpty else { return nil }
        guard let parsed = Int(text) else { throw ValidationError("\(name) '\(text)' is not a number") }
        return parsed
    }
}

/// Runs an HTTP function process until SIGTERM or SIGINT: the Redis pool, any
/// background services and the HTTP application in one `ServiceGroup`. On a
/// signal the group stops in reverse order: HTTP first (in-flight requests
/// finish, open watch streams end), then the watch hub's lanes, then background services (`serve`'s worker
/// keeps projecting while queries wait for their `minVersion`), then the pool.
struct FunctionProcess {
    var options: GlobalOptions
    var runtime: RuntimeConfiguration
    var authentication: Authentication
    var redis: RedisConfiguration
    /// `serve` sets the store up (idempotently); `function` only reads the layout set up by the `setup` Job.
    var runsSetup: Bool
    var logger: Logger
    /// How long start-up waits for Redis to answer.
    var startupTimeout: Duration = .seconds(30)

    /// `backgroundServices` get the process's metrics so what they report shows on `/metrics`.
    func run(
        backgroundServices: (RedisConnectionPool, KeyLayout, RuntimeMetrics) throws -> [any Service] = { _, _, _ in [] }
    ) async throws {
        FileDescriptorLimit.raise(forConnections: runtime.http.maximumConnections, logger: logger)
        let layout = try await prepareStore()
        let pool = RedisConnectionPool(configuration: redis, logger: logger)
        let metrics = RuntimeMetrics()
        let dependencies = RedisBackend.dependencies(pool: pool, layout: layout, metrics: metrics, logger: logger)
        let application = try FunctionApplication.make(
            configuration: runtime,
            authentication: authentication,
            dependencies: dependencies,
            metrics: metrics,
            readiness: RedisBackend.readiness(redis: pool, libraries: StoreSetup.Library.all, logger: logger),
            logger: logger)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [pool] + (try backgroundServices(pool, layout, metrics)) + (dependencies.watcher.map { [$0] } ?? [])
                    + [application],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }

    /// The key layout to serve, after set-up when asked for. Retries while
    /// Redis is unreachable (it may still be starting), up to `startupTimeout`.
    private func prepareStore() async throws -> KeyLayout {
        let deadline = ContinuousClock.now + startupTimeout
        while true {
            do {
                return try await withRedisPool(redis, logger: logger) { pool in
                    let layout = try await options.layout(on: pool)
                    if runsSetup {
                        do {
                            _ = try await StoreSetup.run(on: pool, layout: layout, libraries: StoreSetup.Library.all)
                        } catch let error as EventStoreError where error.isPermissionDenied {
                            // The runtime user of a least-privilege ACL: set-up is the set-up user's job.
                            logger.info("this Redis user may not set the store up; serving what `threadweave setup` set up")
                        }
                    }
                    return layout
                }
            } catch let error as EventStoreError where error.code == .unavailable && ContinuousClock.now < deadline {
                logger.warning("Redis is not answering yet; retrying", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .milliseconds(500))
            }
        }
    }
}
