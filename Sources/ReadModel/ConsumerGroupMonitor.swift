public import EventStore
public import Metrics
public import RedisClient

/// Samples the `rmu` consumer group of every partition (XINFO GROUPS, XLEN)
/// and publishes gauges: the signal the RMU Deployment scales on.
///
/// - `threadweave_rmu_lag{partition}`: log entries not yet delivered to the group
/// - `threadweave_rmu_pending{partition}`: delivered, not yet acknowledged
/// - `threadweave_rmu_dead_letters{partition}`: length of `tw:{pNN}:dead`
public struct ConsumerGroupMonitor: Sendable {
    public struct PartitionSample: Sendable, Hashable {
        public var partition: Int
        public var lag: Int
        public var pending: Int
        public var deadLetters: Int

        public init(partition: Int, lag: Int, pending: Int, deadLetters: Int) {
            self.partition = partition
            self.lag = lag
            self.pending = pending
            self.deadLetters = deadLetters
        }
    }

    public static let lagLabel = "threadweave_rmu_lag"
    public static let pendingLabel = "threadweave_rmu_pending"
    public static let deadLettersLabel = "threadweave_rmu_dead_letters"

    private let redis: any RedisCommandExecutor
    private let layout: KeyLayout
    private let metricsFactory: (any MetricsFactory)?
    /// The most undelivered entries counted one by one when Redis cannot say the lag.
    private let lagCountLimit = 10_000

    public init(redis: any RedisCommandExecutor, layout: KeyLayout, metricsFactory: (any MetricsFactory)? = nil) {
        self.redis = redis
        self.layout = layout
        self.metricsFactory = metricsFactory
    }

    public func sample() async throws(ReadModelError) -> [PartitionSample] {
        var commands: [RedisCommand] = []
        for partition in layout.allPartitions {
            commands.append(RedisCommand("XINFO", "GROUPS", layout.changeLog(partition: partition)))
            commands.append(RedisCommand("XLEN", layout.deadLetters(partition: partition)))
        }
        let replies: [Result<RedisValue, RedisError>]
        do {
            replies = try await redis.pipeline(commands)
        } catch {
            throw ReadModelError(redisError: error, command: "XINFO")
        }
        var samples: [PartitionSample] = []
        for partition in layout.allPartitions {
            let deadLetters = (try? replies[2 * partition + 1].get())?.int ?? 0
            // A log without the group (set-up not run yet) has nothing delivered or pending.
            let groups = (try? replies[2 * partition].get())?.array ?? []
            let group = groups.lazy.compactMap { FlatFields($0) }.first { $0["name"]?.string == StoreSetup.consumerGroup }
            var lag = group?["lag"]?.int
            if lag == nil {
                lag = try await countUndelivered(partition: partition, after: group?["last-delivered-id"]?.string ?? "0-0")
            }
            samples.append(
                PartitionSample(partition: partition, lag: lag ?? 0, pending: group?["pending"]?.int ?? 0, deadLetters: deadLetters))
        }
        return samples
    }

    /// Redis reports no lag after some deletions; count the entries past the
    /// group's last delivered one instead (bounded).
    private func countUndelivered(partition: Int, after lastDelivered: String) async throws(ReadModelError) -> Int {
        do {
            let reply = try await redis.send(
                RedisCommand("XRANGE", layout.changeLog(partition: partition), "(\(lastDelivered)", "+", "COUNT", String(lagCountLimit)))
            return reply.array?.count ?? 0
        } catch {
            throw ReadModelError(redisError: error, command: "XRANGE")
        }
    }

    public func record(_ samples: [PartitionSample]) {
        let factory = metricsFactory ?? MetricsSystem.factory
        for sample in samples {
            let dimensions = [("partition", layout.hashTag(partition: sample.partition).trimmingBraces)]
            Gauge(label: Self.lagLabel, dimensions: dimensions, factory: factory).record(sample.lag)
            Gauge(label: Self.pendingLabel, dimensions: dimensions, factory: factory).record(sample.pending)
            Gauge(label: Self.deadLettersLabel, dimensions: dimensions, factory: factory).record(sample.deadLetters)
        }
    }
}

/// A flat `name, value, …` reply (XINFO) read by name.
struct FlatFields {
    private var values: [String: RedisValue] = [:]

    init?(_ reply: RedisValue) {
        guard reply.array != nil else { return nil }
        for (name, value) in reply.pairs {
            if let name = name.string { values[name] = value }
        }
    }

    subscript(name: String) -> RedisValue? {
        guard let value = values[name], !value.isNull else { return nil }
        return value
    }
}

extension String {
    /// `{p07}` → `p07`.
    var trimmingBraces: String { String(dropFirst().dropLast()) }
}
