public import EventStore
public import Logging
public import RedisClient

/// `tw:{pNN}:dead`: change-log entries the RMU gave up on, with the reason.
public struct DeadLetters: Sendable {
    public struct Letter: Sendable, Hashable {
        public var partition: Int
        /// The dead-letter entry's own id (what `replay` takes).
        public var id: String
        public var reason: String
        /// The entry's id in the change log it came from.
        public var originalId: String
        /// The original entry's fields, in order.
        public var fields: [Field]
    }

    public struct Field: Sendable, Hashable {
        public var name: String
        public var value: String
    }

    public let layout: KeyLayout
    private let redis: ReadModelRedis

    public init(redis: any RedisCommandExecutor, layout: KeyLayout, logger: Logger) {
        self.layout = layout
        self.redis = ReadModelRedis(redis, logger: logger)
    }

    /// Dead letters of one partition, or of all, oldest first (at most `limit` per partition).
    public func list(partition: Int? = nil, limit: Int = 100) async throws(ReadModelError) -> [Letter] {
        var letters: [Letter] = []
        for partition in partitions(partition) {
            let reply = try await redis.send(RedisCommand("XRANGE", layout.deadLetters(partition: partition), "-", "+", "COUNT", String(limit)))
            for entry in reply.array ?? [] {
                guard let pair = entry.array, pair.count == 2, let id = pair[0].string, let flat = pair[1].array else { continue }
                var letter = Letter(partition: partition, id: id, reason: "", originalId: "", fields: [])
                for (name, value) in RedisValue.array(flat).pairs {
                    let name = name.string ?? "", value = value.string ?? "<binary>"
                    switch name {
                    case "reason": letter.reason = value
                    case "originalId": letter.originalId = value
                    default: letter.fields.append(Field(name: name, value: value))
                    }
                }
                letters.append(letter)
            }
        }
        return letters
    }

    /// Re-adds a dead letter's original fields to its partition's change log
    /// (a new entry, delivered afresh) and removes the dead letter, in one
    /// step. Returns the new log entry id, or nil when there is no such letter.
    @discardableResult
    public func replay(partition: Int, id: String) async throws(ReadModelError) -> String? {
        let reply = try await redis.send(
            .fcall(
                "tw_rm_replay_dead_letter", keys: [layout.deadLetters(partition: partition), layout.changeLog(partition: partition)],
                arguments: [id]))
        return reply.string
    }

    /// Replays every dead letter of one partition, or of all. Returns how many.
    public func replayAll(partition: Int? = nil) async throws(ReadModelError) -> Int {
        var replayed = 0
        for letter in try await list(partition: partition, limit: 10_000) where try await replay(partition: letter.partition, id: letter.id) != nil {
            replayed += 1
        }
        return replayed
    }

    private func partitions(_ partition: Int?) -> [Int] {
        partition.map { [$0] } ?? Array(layout.allPartitions)
    }
}
