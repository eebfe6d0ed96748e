import ArgumentParser
import EventStore
import Foundation
import FunctionRuntime
import Logging
import Metrics
import ReadModel
import RedisClient
import ServiceLifecycle

/// `threadweave worker`: one read-model updater (DESIGN §3, §5) until SIGTERM
/// or SIGINT, which stop reading and let the batch in hand finish and be acked.
/// It serves `/healthz` (the consuming loop is going round), `/readyz` (Redis
/// answers, libraries loaded) and `/metrics` (lag, pending, dead letters).
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a read-model updater: consume the change logs through group rmu, project, acknowledge.",
        discussion: "Serves /healthz, /readyz and /metrics on --host (default 0.0.0.0) and --port (env PORT, default 8080)."
    )

    @OptionGroup var options: GlobalOptions
    @OptionGroup var http: HTTPOptions
    @OptionGroup var tuning: WorkerOptions

    /// A loop round (one blocking read, or one claim) that has not come back
    /// within this long is stuck: reads block for a second, commands time out in five.
    static let stuckAfter: Duration = .seconds(60)

    func run() async throws {
        let logger = options.makeLogger(label: "threadweave.worker")
        let redis = try options.redisConfiguration()
        let httpConfiguration = try http.configuration(defaultHost: "0.0.0.0")
        let layout = try await withRedisPool(redis, logger: logger) { pool in try await options.layout(on: pool) }
        let pool = RedisConnectionPool(configuration: redis, logger: logger)
        let metrics = RuntimeMetrics()
        let worker = ReadModelWorker(
            pool: pool, layout: layout, configuration: tuning.configuration(), logger: logger, metricsFactory: metrics.factory)
        let progress = worker.progress
        let probes = FunctionApplication.makeProbes(
            http: httpConfiguration, serverName: "threadweave-worker", metrics: metrics,
            readiness: RedisBackend.readiness(redis: pool, libraries: StoreSetup.Library.all, logger: logger),
            liveness: { progress.isLive(within: Self.stuckAfter) }, logger: logger)
        // The pool first: a ServiceGroup stops in reverse order, so the worker finishes before Redis closes.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [pool, probes, worker], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Tuning of a worker; the defaults suit most deployments.
struct WorkerOptions: ParsableArguments {
    @Option(help: "Consumer name in group rmu (env THREADWEAVE_CONSUMER, default <hostname>-<pid>).")
    var consumer: String?

    @Option(help: "Entries per read.")
    var batchSize = 100

    @Option(help: "Milliseconds one read blocks (also the longest wait of a graceful shutdown).")
    var blockMilliseconds = 1000

    @Option(help: "Milliseconds a read that caught up waits before the next, so that all logs' new entries gather into one round (0: read again at once).")
    var gatherPauseMilliseconds = 2

    @Option(help: "Connections a round's applies are spread over, the reading one included (on one Redis node; on a cluster each partition's own).")
    var applyConnections = 4

    @Option(help: "Seconds an entry must be pending with another consumer before it is claimed.")
    var claimIdleSeconds = 30

    @Option(help: "Deliveries after which an entry goes to the dead letters.")
    var maximumDeliveries = 5

    func configuration() -> ReadModelWorker.Configuration {
        var configuration = ReadModelWorker.Configuration(
            consumerName: consumer ?? ReadModelWorker.Configuration.defaultConsumerName(environment: ProcessInfo.processInfo.environment))
        configuration.batchSize = max(1, batchSize)
        configuration.block = .milliseconds(max(1, blockMilliseconds))
        configuration.gatherPause = .milliseconds(max(0, gatherPauseMilliseconds))
        configuration.applyConnections = max(1, applyConnections)
        configuration.claimIdleThreshold = .seconds(max(1, claimIdleSeconds))
        configuration.claimInterval = .seconds(max(1, claimIdleSeconds / 2))
        configuration.maximumDeliveries = max(1, maximumDeliveries)
        return configuration
    }
}
