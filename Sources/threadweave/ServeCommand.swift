import ArgumentParser
import Foundation
import FunctionRuntime
import Logging
import ReadModel
import RedisClient

/// `threadweave serve`: every function behind one gateway. With no Redis URL
/// it runs its own `redis-server` child, so one command runs the whole system.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve every function behind one HTTP gateway (REST routes and POST /function/<name>).",
        discussion: """
            Sets the store up first (idempotent). Without --redis-url or REDIS_URL it starts a private \
            redis-server on a free loopback port, with AOF on and its data in --data-dir, and stops it on exit.
            """
    )

    @OptionGroup var options: GlobalOptions
    @OptionGroup var http: HTTPOptions
    @OptionGroup var authentication: AuthenticationOptions
    @OptionGroup(title: "Read-model worker") var worker: WorkerOptions

    @Option(name: .customLong("data-dir"), help: "Data directory of the private redis-server.")
    var dataDirectory = ".threadweave/redis"

    @Option(help: "Seconds between trims of acknowledged change-log entries (the reclaim job's trim).")
    var trimIntervalSeconds = 60

    func validate() throws {
        guard trimIntervalSeconds > 0 else { throw ValidationError("--trim-interval-seconds must be positive") }
    }

    func run() async throws {
        let logger = options.makeLogger(label: "threadweave.serve")
        let runtime = RuntimeConfiguration(http: try http.configuration(defaultHost: "127.0.0.1"), mode: .gateway)
        let authentication = try await authentication.authentication(defaultMode: .none, logger: logger)
        guard options.resolvedRedisURL == nil else {
            try await serve(runtime, authentication: authentication, redis: try options.redisConfiguration(), logger: logger)
            return
        }
        try await PrivateRedisServer.with(directory: URL(fileURLWithPath: dataDirectory, isDirectory: true), logger: logger) {
            url in
            try await serve(runtime, authentication: authentication, redis: try RedisConfiguration(url: url), logger: logger)
        }
    }

    private func serve(
        _ runtime: RuntimeConfiguration, authentication: Authentication, redis: RedisConfiguration, logger: Logger
    ) async throws {
        let process = FunctionProcess(
            options: options, runtime: runtime, authentication: authentication, redis: redis, runsSetup: true, logger: logger)
        let trimInterval = Duration.seconds(trimIntervalSeconds)
        try await process.run(backgroundServices: { pool, layout, metrics in
            [
                // The read-model worker in-process, tuned by `threadweave worker`'s options.
                ReadModelWorker(
                    pool: pool, layout: layout, configuration: worker.configuration(), logger: logger, metricsFactory: metrics.factory),
                LogTrimmingService(
                    maintenance: LogMaintenance(redis: pool, layout: layout, logger: logger), interval: trimInterval, logger: logger),
            ]
        })
    }
}
