public import EventStore
public import Logging
public import RedisClient
public import ServiceLifecycle

/// The `reclaim` job's housekeeping of the change logs (claiming stale
/// entries is `ReadModelWorker.claimStale()`).
public struct LogMaintenance: Sendable {
    public let layout: KeyLayout
    private let redis: ReadModelRedis
    private let logger: Logger

    public init(redis: any RedisCommandExecutor, layout: KeyLayout, logger: Logger) {
        self.layout = layout
        self.redis = ReadModelRedis(redis, logger: logger)
        self.logger = logger
    }

    /// Removes `rmu` consumers that hold no pending entries and have been
    /// idle longer than `idleThreshold` (workers that are gone). Returns
    /// their names as `pNN/consumer`.
    public func removeIdleConsumers(idleLongerThan idleThreshold: Duration) async throws(ReadModelError) -> [String] {
        try await removeConsumers { _, idle in idle > idleThreshold.milliseconds }
    }

    /// Removes the named consumer wherever it holds no pending entries (a
    /// one-shot job's own consumer, once done).
    public func removeIdleConsumers(named consumerName: String) async throws(ReadModelError) -> [String] {
        try await removeConsumers { name, _ in name == consumerName }
    }

    /// Removes consumers with nothing pending that `shouldRemove(name, idle ms)` picks.
    private func removeConsumers(where shouldRemove: (String, Int64) -> Bool) async throws(ReadModelError) -> [String] {
        var removed: [String] = []
        for partition in layout.allPartitions {
            let log = layout.changeLog(partition: partition)
            let consumers: RedisValue
            do {
                consumers = try await redis.executor.send(RedisCommand("XINFO", "CONSUMERS", log, StoreSetup.consumerGroup))
            } catch let error where error.serverErrorPrefix == "NOGROUP" || error.message.contains("no such key") {
                continue
            } catch {
                throw ReadModelError(redisError: error, command: "XINFO")
            }
            for consumer in consumers.array ?? [] {
                guard let info = FlatFields(consumer), let name = info["name"]?.string, let pending = info["pending"]?.int,
                    let idle = info["idle"]?.int, pending == 0, shouldRemove(name, Int64(idle))
                else { continue }
                try await redis.send(RedisCommand("XGROUP", "DELCONSUMER", log, StoreSetup.consumerGroup, name))
                removed.append("\(layout.hashTag(partition: partition).trimmingBraces)/\(name)")
            }
        }
        return removed
    }

    /// Trims from every log the entries that every group has acknowledged:
    /// below the smaller of each group's oldest pending entry and the entry
    /// after its last delivered one. An unacknowledged entry is never
    /// trimmed, and a log without groups is left alone. Returns the number of
    /// entries trimmed.
    public func trimAcknowledged() async throws(ReadModelError) -> Int {
        var trimmed = 0
        for partition in layout.allPartitions {
            let log = layout.changeLog(partition: partition)
            guard let bound = try await trimBound(of: log) else { continue }
            trimmed += try await redis.send(RedisCommand("XTRIM", log, "MINID", bound.description)).int ?? 0
        }
        return trimmed
    }

    private func trimBound(of log: String) async throws(ReadModelError) -> StreamID? {
        let groups: RedisValue
        do {
            groups = try await redis.executor.send(RedisCommand("XINFO", "GROUPS", log))
        } catch let error where error.message.contains("no such key") {
            return nil
        } catch {
            throw ReadModelError(redisError: error, command: "XINFO")
        }
        var bound: StreamID?
        for group in groups.array ?? [] {
            guard let info = FlatFields(group), let name = info["name"]?.string,
                let lastDelivered = info["last-delivered-id"]?.string.flatMap(StreamID.init)
            else { return nil }
            let summary = try await redis.send(RedisCommand("XPENDING", log, name))
            guard let parts = summary.array, parts.count >= 2, let pending = parts[0].int else {
                throw ReadModelError.unexpected(summary, in: "XPENDING")
            }
            let groupBound: StreamID
            if pending > 0 {
                guard let oldest = parts[1].string.flatMap(StreamID.init) else { throw ReadModelError.unexpected(summary, in: "XPENDING") }
                groupBound = oldest
            } else {
                groupBound = lastDelivered.successor
            }
            bound = bound.map { min($0, groupBound) } ?? groupBound
        }
        return bound
    }
}

/// Trims acknowledged change-log entries every `interval`, as the `reclaim`
/// job does on Kubernetes, for `serve`, which has no such job: without it the
/// logs would grow for as long as it runs. A failed round (Redis away) is
/// logged and the next round tries again.
public struct LogTrimmingService: Service {
    private let maintenance: LogMaintenance
    private let interval: Duration
    private let logger: Logger

    public init(maintenance: LogMaintenance, interval: Duration, logger: Logger) {
        self.maintenance = maintenance
        self.interval = interval
        self.logger = logger
    }

    public func run() async {
        await cancelWhenGracefulShutdown { [maintenance, interval, logger] in
            // Shutdown cancels the sleep, which ends the loop.
            while (try? await Task.sleep(for: interval)) != nil {
                do {
                    let trimmed = try await maintenance.trimAcknowledged()
                    logger.debug("trimmed acknowledged change-log entries", metadata: ["entries": "\(trimmed)"])
                } catch let error where !Task.isCancelled {
                    logger.warning("could not trim the change logs", metadata: ["error": "\(error)"])
                } catch {
                    return
                }
            }
        }
    }
}
