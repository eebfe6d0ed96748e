import EventStore
import Logging
import RedisClient

/// Runs `body` with a connection pool whose `run()` lives exactly as long as
/// the body: for the one-shot subcommands (setup, events, rebuild, …), and for
/// the start of the long-running ones. Redis's door is tried first (see
/// `checkRedisAccess`), so refused credentials end the process with one line.
func withRedisPool<T: Sendable>(
    _ configuration: RedisConfiguration, logger: Logger, _ body: @Sendable (RedisConnectionPool) async throws -> T
) async throws -> T {
    let pool = RedisConnectionPool(configuration: configuration, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await pool.run() }
        defer { group.cancelAll() }
        try await checkRedisAccess(pool)
        return try await body(pool)
    }
}

/// One PING. Refused credentials, missing ones, an untrusted TLS certificate
/// or a user that may not even PING throw `RedisAccessError`: retrying cannot
/// help, so the process stops at once with a message that names the user
/// (never the password). Anything transient (Redis still starting) throws
/// the `EventStoreError` callers already retry on or report.
func checkRedisAccess(_ pool: RedisConnectionPool) async throws {
    let user = pool.configuration.username ?? "default"
    do {
        _ = try await pool.send(RedisCommand("PING"))
    } catch let error where [.authenticationFailed, .tlsHandshakeFailed, .invalidConfiguration].contains(error.code) {
        throw RedisAccessError(error.message)
    } catch let error where error.serverErrorPrefix == "NOAUTH" {
        throw RedisAccessError(
            "Redis requires authentication (NOAUTH): name the user in REDIS_URL (redis://user@host:port) "
                + "and its password in REDIS_PASSWORD_FILE")
    } catch let error where error.isPermissionDenied {
        throw RedisAccessError("Redis user '\(user)' may not run PING (NOPERM): its ACL is not the one docs/SECURITY.md gives")
    } catch {
        throw EventStoreError(redisError: error, command: "PING")
    }
}

/// Redis will not let this process in; printed as the process's last line.
struct RedisAccessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
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
