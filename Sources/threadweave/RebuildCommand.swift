import ArgumentParser
import EventStore
import Foundation
import ReadModel

/// `threadweave rebuild`: replays every thread stream into a new generation of
/// the read model beside the live one, switches to it, then drops the old one;
/// queries keep answering throughout. Refuses to start while another rebuild
/// holds the lock (exit status 4).
struct RebuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Rebuild the read model from the thread streams beside the live one, then switch to it (one rebuild at a time per namespace)."
    )

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let logger = options.makeLogger(label: "threadweave.rebuild")
        let report = try await withRedisPool(try options.redisConfiguration(), logger: logger) { pool in
            let layout = try await options.layout(on: pool)
            return try await ReadModelRebuilder(redis: pool, layout: layout, logger: logger).rebuild { progress in
                FileHandle.standardError.write(Data((Self.describe(progress) + "\n").utf8))
            }
        }
        print(
            "rebuilt the read model: \(report.threads) threads, \(report.events) events; generation \(report.generation) is live "
                + "(\(report.keysDropped) keys of the old one dropped)")
    }

    /// `rebuild: 120000/1000000 events, 340 threads, 12345 events/s, about 71 s left`
    static func describe(_ progress: ReadModelRebuilder.Progress) -> String {
        let left = progress.remaining.map { "about \($0.components.seconds + 1) s left" } ?? "starting"
        return "rebuild: \(progress.events)/\(progress.totalEvents) events, \(progress.threads) threads, "
            + "\(Int(progress.eventsPerSecond)) events/s, \(progress.events >= progress.totalEvents ? "done" : left)"
    }
}
