public import RedisClient

/// `threadweave setup`: loads the Function libraries, writes `tw:config` and
/// creates the `rmu` consumer group on every partition log. Idempotent: run
/// it as often as you like, from a Job, an init container or a laptop.
public enum StoreSetup {
    public static let consumerGroup = "rmu"
    public static let layoutVersion = "1"

    public struct Library: Sendable, Hashable {
        public var name: String
        public var source: String
        public init(name: String, source: String) {
            self.name = name
            self.source = source
        }
        public static let eventStore = Library(name: ThreadweaveLibrary.name, source: ThreadweaveLibrary.source)

        /// `FUNCTION LOAD REPLACE <source>`.
        public var loadCommand: RedisCommand { RedisCommand("FUNCTION", "LOAD", "REPLACE", source) }
    }

    public struct Report: Sendable, Hashable {
        public var layout: KeyLayout
        public var groupsCreated: Int
    }

    /// Sets the store up for `layout`. The partition count is fixed at the
    /// first set-up: a later run asking for another count is refused, since
    /// every thread would move to another partition.
    public static func run(
        on redis: any RedisCommandExecutor, layout: KeyLayout, libraries: [Library] = [.eventStore]
    ) async throws(EventStoreError) -> Report {
        for library in libraries {
            try await loadLibrary(library, on: redis)
        }
        let existing = try await storedPartitionCount(on: redis, namespace: layout.namespace)
        if let existing, existing != layout.partitionCount {
            throw EventStoreError(
                .unexpectedReply,
                "\(layout.config) says \(existing) partitions; this set-up asked for \(layout.partitionCount). The count is fixed at the first set-up."
            )
        }
        try await send(
            RedisCommand(
                "HSET", layout.config, "partitions", String(layout.partitionCount),
                "layout", layoutVersion, "library", ThreadweaveLibrary.version), on: redis)

        return Report(layout: layout, groupsCreated: try await createConsumerGroups(on: redis, layout: layout))
    }

    /// Creates the `rmu` group on every partition log (and the log with it)
    /// where it is missing; returns how many were created. Set-up and a
    /// starting worker both call it.
    public static func createConsumerGroups(on redis: any RedisCommandExecutor, layout: KeyLayout) async throws(EventStoreError) -> Int {
        let replies: [Result<RedisValue, RedisError>]
        do {
            replies = try await redis.pipeline(
                layout.allPartitions.map {
                    RedisCommand("XGROUP", "CREATE", layout.changeLog(partition: $0), consumerGroup, "0", "MKSTREAM")
                })
        } catch {
            throw EventStoreError(redisError: error, command: "XGROUP")
        }
        var created = 0
        for reply in replies {
            switch reply {
            case .success: created += 1
            case .failure(let error) where error.serverErrorPrefix == "BUSYGROUP": continue
            case .failure(let error): throw EventStoreError(redisError: error, command: "XGROUP")
            }
        }
        return created
    }

    /// The layout this namespace was set up with, or nil before the first set-up.
    public static func storedLayout(on redis: any RedisCommandExecutor, namespace: String) async throws(EventStoreError) -> KeyLayout? {
        guard let count = try await storedPartitionCount(on: redis, namespace: namespace) else { return nil }
        return KeyLayout(namespace: namespace, partitionCount: count)
    }

    /// Loads (or replaces) the event-store library; used by set-up and by a
    /// store that finds the library missing.
    /// In a Redis Cluster, on every primary (each runs the calls of its own slots).
    public static func loadLibrary(_ library: Library = .eventStore, on redis: any RedisCommandExecutor) async throws(EventStoreError) {
        for primary in try await primaries(of: redis) {
            try await send(library.loadCommand, on: primary)
        }
    }

    /// True when the server (in a cluster, every primary) answers and has the
    /// event-store library loaded: the readiness check.
    public static func isReady(on redis: any RedisCommandExecutor) async -> Bool {
        do {
            for primary in try await redis.primaryExecutors() {
                guard try await primary.send(.fcallReadOnly("tw_version", keys: [])).string == ThreadweaveLibrary.version else { return false }
            }
            return true
        } catch {
            return false
        }
    }

    private static func primaries(of redis: any RedisCommandExecutor) async throws(EventStoreError) -> [any RedisCommandExecutor] {
        do {
            return try await redis.primaryExecutors()
        } catch {
            throw EventStoreError(redisError: error, command: "CLUSTER SHARDS")
        }
    }

    private static func storedPartitionCount(on redis: any RedisCommandExecutor, namespace: String) async throws(EventStoreError) -> Int? {
        let reply = try await send(RedisCommand("HGET", KeyLayout(namespace: namespace).config, "partitions"), on: redis)
        guard !reply.isNull else { return nil }
        guard let count = reply.int, count > 0 else {
            throw EventStoreError(.corruptData, "\(namespace):config has an invalid partition count")
        }
        return count
    }

    @discardableResult
    private static func send(_ command: RedisCommand, on redis: any RedisCommandExecutor) async throws(EventStoreError) -> RedisValue {
        do {
            return try await redis.send(command)
        } catch {
            throw EventStoreError(redisError: error, command: command.name)
        }
    }
}
