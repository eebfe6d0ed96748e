public import EventStore
public import Logging
import ReadModel
public import RedisClient
import ThreadDomain
public import ThreadFunctions

/// Wires the functions to Redis: the event store, the command runner, the
/// create-thread reservations, the read model, watch streams and the readiness check.
/// The dependencies' `watcher` is a service: run it beside the pool.
public enum RedisBackend {
    public static func dependencies(
        pool: RedisConnectionPool, layout: KeyLayout, metrics: RuntimeMetrics, logger: Logger,
        runnerConfiguration: CommandRunner.Configuration = .init(), watchLimits: ThreadWatcher.Limits = .init(),
        watchLanes: Int = 4
    ) -> FunctionDependencies {
        let store = RedisEventStore(redis: pool, layout: layout, logger: logger)
        // A command queued behind its thread's append waits no longer than that append may.
        var runnerConfiguration = runnerConfiguration
        runnerConfiguration.queueWaitLimit = pool.configuration.commandTimeout
        let queryLogger = Logger(label: "threadweave.queries")
        return FunctionDependencies(
            commandRunner: CommandRunner(store: store, configuration: runnerConfiguration, logger: logger),
            createReservations: RedisCreateReservations(redis: pool, layout: layout),
            commandObserver: metrics,
            readModel: ReadModelReader(redis: pool, layout: layout, logger: queryLogger),
            watcher: ThreadWatcher(pool: pool, layout: layout, logger: queryLogger, limits: watchLimits, lanes: watchLanes))
    }

    /// Ready when Redis answers and the library is loaded. A server that lost
    /// the library (restarted without persistence) gets it back here, so a
    /// process taken out of rotation brings itself back; where the ACL does
    /// not let this user load it, the process stays unready and says once why.
    public static func readiness(
        redis: any RedisCommandExecutor, libraries: [StoreSetup.Library] = [.eventStore],
        logger: Logger = Logger(label: "threadweave.readiness")
    ) -> @Sendable () async -> Bool {
        let reminder = SetupReminder()
        return {
            if await StoreSetup.isReady(on: redis) { return true }
            guard (try? await redis.send(RedisCommand("PING"))) != nil else { return false }
            for library in libraries {
                do {
                    try await StoreSetup.loadLibrary(library, on: redis)
                } catch {
                    if (error as? EventStoreError)?.isPermissionDenied == true { reminder.remind(library: library.name, logger: logger) }
                    return false
                }
            }
            return await StoreSetup.isReady(on: redis)
        }
    }
}

/// `SET <namespace>:{acct:<account>}:create:<key> <id> NX GET EX 86400`: one round trip
/// that either reserves the candidate id or answers the one reserved before.
struct RedisCreateReservations: CreateReservations {
    let redis: any RedisCommandExecutor
    let layout: KeyLayout
    var timeToLiveSeconds = 86_400

    func reserveThreadId(_ candidate: ThreadID, for account: AccountID, idempotencyKey: String) async throws(FunctionError) -> ThreadID {
        let key = layout.createReservation(account: account, idempotencyKey: idempotencyKey)
        let reply: RedisValue
        do {
            reply = try await redis.send(
                RedisCommand("SET", key, candidate.rawValue, "NX", "GET", "EX", String(timeToLiveSeconds)))
        } catch {
            if error.isTransient {
                throw FunctionError(.unavailable, "Redis is unavailable; nothing was written", underlying: error)
            }
            throw FunctionError(.internalError, "the thread id could not be reserved", underlying: error)
        }
        if reply.isNull { return candidate }
        guard let reserved = reply.string.flatMap(ThreadID.init) else {
            throw FunctionError(.internalError, "the reserved thread id is unreadable")
        }
        return reserved
    }
}
