import ArgumentParser
import EventStore
import Foundation
import ReadModel

/// `threadweave dead-letters list|replay`: the change-log entries the RMU gave up on.
struct DeadLettersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letters",
        abstract: "List or replay the dead letters of the read-model updater.",
        subcommands: [List.self, Replay.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print dead letters, oldest first.")

        @OptionGroup var options: GlobalOptions

        @Option(help: "Only this partition (default: all).")
        var partition: Int?

        @Option(help: "At most this many per partition.")
        var limit = 100

        @Flag(help: "Print one JSON document: {\"count\", \"deadLetters\": [{\"partition\", \"id\", \"originalId\", \"reason\", \"fields\"}]}.")
        var json = false

        func run() async throws {
            let logger = options.makeLogger(label: "threadweave.dead-letters")
            let letters = try await withRedisPool(try options.redisConfiguration(), logger: logger) { pool in
                let layout = try await options.layout(on: pool)
                return try await DeadLetters(redis: pool, layout: layout, logger: logger).list(partition: partition, limit: limit)
            }
            if json {
                print(try Self.json(letters))
                return
            }
            for letter in letters {
                let fields = letter.fields.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
                print("p\(letter.partition) \(letter.id) (from \(letter.originalId)): \(letter.reason)\n    \(fields)")
            }
            print("\(letters.count) dead letters")
        }

        /// The `--json` document; its field names are a contract for scripts.
        static func json(_ letters: [DeadLetters.Letter]) throws -> String {
            struct Document: Encodable {
                struct Letter: Encodable {
                    var partition: Int
                    var id: String
                    var originalId: String
                    var reason: String
                    /// The change-log entry's fields (`thread`, `version`, `type`, `at`, `actor`, `cmd`, `data`).
                    var fields: [String: String]
                }
                var count: Int
                var deadLetters: [Letter]
            }
            let document = Document(
                count: letters.count,
                deadLetters: letters.map { letter in
                    Document.Letter(
                        partition: letter.partition, id: letter.id, originalId: letter.originalId, reason: letter.reason,
                        fields: Dictionary(letter.fields.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first }))
                })
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return String(decoding: try encoder.encode(document), as: UTF8.self)
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-add dead letters to their change log (delivered afresh) and delete them from the dead letters.")

        @OptionGroup var options: GlobalOptions

        @Option(help: "Only this partition (default: all).")
        var partition: Int?

        @Option(help: "Only this dead letter (its id in the dead-letter stream; needs --partition).")
        var id: String?

        func validate() throws {
            if id != nil, partition == nil { throw ValidationError("--id needs --partition") }
        }

        func run() async throws {
            let logger = options.makeLogger(label: "threadweave.dead-letters")
            let replayed = try await withRedisPool(try options.redisConfiguration(), logger: logger) { pool in
                let layout = try await options.layout(on: pool)
                let deadLetters = DeadLetters(redis: pool, layout: layout, logger: logger)
                if let id, let partition {
                    return try await deadLetters.replay(partition: partition, id: id) == nil ? 0 : 1
                }
                return try await deadLetters.replayAll(partition: partition)
            }
            print("replayed \(replayed) dead letters")
        }
    }
}
