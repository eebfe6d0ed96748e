import EventStore
import Logging
import RedisClient

/// Runs `body` with a connection pool whose `run()` lives exactly as long as
/// the body: for the one-shot subcommands (setup, events, rebuild, …).
func withRedisPool<T: Sendable>(
    _ configuration: RedisConfiguration, logger: Logger, _ body: @Sendable (RedisConnectionPool) async throws -> T
) async throws -> T {
    let pool = RedisConnectionPool(configuration: configuration, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await pool.run() }
        defer { group.cancelAll() }
        return try await body(pool)
    }
}

extension GlobalOptions {
    /// The layout stored at set-up, or the requested/default one before any set-up.
    func layout(on redis: any RedisCommandExecutor) async throws -> KeyLayout {
        if let stored = try await StoreSetup.storedLayout(on: redis, namespace: resolvedNamespace) {
            return stored
        }
        return KeyLayout(namespace: resolvedNamespace, partitionCount: partitions ?? KeyLayout.defaultPartitionCount)
    }
}
