import ArgumentParser
import EventStore
import ReadModel

/// `threadweave rebuild`: drops the namespace's read model and replays every
/// thread stream into it. Refuses to start while another rebuild holds the lock.
struct RebuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Drop the read model and rebuild it from the thread streams (one rebuild at a time per namespace)."
    )

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let logger = options.makeLogger(label: "threadweave.rebuild")
        let report = try await withRedisPool(try options.redisConfiguration(), logger: logger) { pool in
            let layout = try await options.layout(on: pool)
            return try await ReadModelRebuilder(redis: pool, layout: layout, logger: logger).rebuild()
        }
        print("rebuilt the read model: \(report.threads) threads, \(report.events) events (\(report.keysDropped) keys dropped)")
    }
}
