import ArgumentParser
import EventStore
import Foundation
import ReadModel

/// `threadweave reclaim` (a CronJob): takes over entries that dead workers
/// left pending and projects them, removes consumers that are gone, and trims
/// the change-log entries every group has acknowledged.
struct ReclaimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reclaim",
        abstract: "Claim stale pending entries, remove idle consumers, trim acknowledged change-log entries."
    )

    @OptionGroup var options: GlobalOptions

    @Option(help: "Seconds an entry must be pending before it is claimed.")
    var claimIdleSeconds = 60

    @Option(help: "Seconds a consumer with nothing pending must be idle before it is removed.")
    var consumerIdleSeconds = 3600

    @Flag(help: "Do not trim the change logs.")
    var noTrim = false

    func run() async throws {
        let logger = options.makeLogger(label: "threadweave.reclaim")
        let redis = try options.redisConfiguration()
        let consumerName = "reclaim-\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
        try await withRedisPool(redis, logger: logger) { pool in
            let layout = try await options.layout(on: pool)
            var configuration = ReadModelWorker.Configuration(consumerName: consumerName)
            configuration.claimIdleThreshold = .seconds(claimIdleSeconds)
            let claimed = try await ReadModelWorker(pool: pool, layout: layout, configuration: configuration, logger: logger).claimStale()
            let maintenance = LogMaintenance(redis: pool, layout: layout, logger: logger)
            // This run's own consumer goes too, once its claims are acknowledged (idle threshold 0).
            var removed = try await maintenance.removeIdleConsumers(idleLongerThan: .seconds(consumerIdleSeconds))
            removed += try await maintenance.removeIdleConsumers(named: consumerName)
            let trimmed = noTrim ? 0 : try await maintenance.trimAcknowledged()
            print("claimed \(claimed) stale entries, removed \(removed.count) consumers, trimmed \(trimmed) log entries")
        }
    }
}
