import ArgumentParser
import EventStore
import Foundation
import ThreadDomain

struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Print a thread's events, decoded, oldest first."
    )

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The thread's id (a ULID).")
    var threadId: String

    @Option(help: "Print only events after this version.")
    var after: Int64 = 0

    @Flag(help: "One JSON object per line instead of text.")
    var json = false

    func run() async throws {
        guard let threadId = ThreadID(threadId) else {
            throw ValidationError("'\(self.threadId)' is not a ULID")
        }
        let logger = options.makeLogger(label: "threadweave.events")
        let configuration = try options.redisConfiguration()
        try await withRedisPool(configuration, logger: logger) { pool in
            let store = RedisEventStore(redis: pool, layout: try await options.layout(on: pool), logger: logger)
            var version = after
            while true {
                let page = try await store.events(of: threadId, after: version, limit: 500)
                for event in page { print(format(event)) }
                guard let last = page.last else { break }
                version = last.version
            }
        }
    }

    private func format(_ recorded: RecordedEvent) -> String {
        let at = Date(timeIntervalSince1970: Double(recorded.at) / 1000).formatted(.iso8601)
        if json {
            return #"{"version":\#(recorded.version),"type":"\#(recorded.event.typeName)","at":\#(recorded.at),"actor":"\#(recorded.actor)","commandId":"\#(recorded.commandId)","data":\#(recorded.event.encodedData())}"#
        }
        return "\(recorded.version)\t\(at)\t\(recorded.event.typeName)\tactor=\(recorded.actor)\t\(recorded.event.encodedData())"
    }
}
