public import Logging
public import RedisClient
import Synchronization

/// Sends commands that call a Function library. When Redis says a function
/// is missing (a fresh server, or one restarted without persistence), loads
/// the library and sends once more: the one place that knows how, for the
/// event store and the read model alike. Under a least-privilege ACL the
/// load itself is refused (NOPERM): the call then fails as
/// `.functionNotLoaded`, which callers answer 503, and `reminder` says once
/// that `threadweave setup` must run.
public struct LibraryCalls: Sendable {
    public let executor: any RedisCommandExecutor
    public let library: StoreSetup.Library
    private let logger: Logger
    private let reminder: SetupReminder

    public init(
        _ executor: any RedisCommandExecutor, library: StoreSetup.Library, logger: Logger,
        reminder: SetupReminder = SetupReminder()
    ) {
        self.executor = executor
        self.library = library
        self.logger = logger
        self.reminder = reminder
    }

    public func send(_ command: RedisCommand) async throws(RedisError) -> RedisValue {
        do {
            return try await executor.send(command)
        } catch let error where error.isFunctionMissing {
            // In a cluster, on the node that is missing it (the one serving the command's key).
            let key = command.keys.first ?? ""
            try await loadLibrary { (load: RedisCommand) async throws(RedisError) in try await executor.send(load, toNodeOf: key) }
            return try await executor.send(command)
        }
    }

    public func execute<Call: RedisCall>(_ call: Call) async throws(RedisError) -> Call.Reply {
        try call.decode(try await send(call.command))
    }

    /// Sends the commands back to back. If any met a missing function, loads
    /// the library and sends them all again: every call of our libraries may
    /// run twice (they are version-gated or recognise their own writes).
    public func pipeline(_ commands: [RedisCommand]) async throws(RedisError) -> [Result<RedisValue, RedisError>] {
        guard !commands.isEmpty else { return [] }
        let results = try await executor.pipeline(commands)
        guard results.contains(where: { if case .failure(let error) = $0 { error.isFunctionMissing } else { false } }) else {
            return results
        }
        // Split over a cluster's nodes, the commands may have met several nodes without it.
        for primary in try await executor.primaryExecutors() {
            try await loadLibrary { (load: RedisCommand) async throws(RedisError) in try await primary.send(load) }
        }
        return try await executor.pipeline(commands)
    }

    private func loadLibrary(
        sending send: (RedisCommand) async throws(RedisError) -> RedisValue
    ) async throws(RedisError) {
        do {
            _ = try await send(library.loadCommand)
        } catch let error where error.isPermissionDenied {
            reminder.remind(library: library.name, logger: logger)
            throw RedisError(
                code: .functionNotLoaded,
                message: "the \(library.name) library is not loaded and this Redis user may not load it; run `threadweave setup`",
                underlying: error)
        }
        logger.notice("loaded the \(library.name) library, which the server was missing")
    }
}

/// Says once, however many requests meet it, that a Function library is
/// missing and this process's Redis user may not load it: an operator must
/// run `threadweave setup` (as the set-up user). Share one per process part.
public final class SetupReminder: Sendable {
    private let reminded = Mutex(false)

    public init() {}

    public func remind(library: String, logger: Logger) {
        let first = reminded.withLock { reminded in
            defer { reminded = true }
            return !reminded
        }
        guard first else { return }
        logger.error(
            """
            the \(library) Redis Function library is not loaded, and this Redis user may not load it (NOPERM): \
            run `threadweave setup` as the set-up user; until then requests answer 503
            """)
    }
}

extension EventStoreError {
    /// The ACL refused the command (NOPERM): e.g. set-up tried by the runtime user.
    public var isPermissionDenied: Bool {
        (underlying as? RedisError)?.isPermissionDenied == true
    }
}

extension RedisError {
    /// `ERR Function not found`: the library is not loaded on this server.
    public var isFunctionMissing: Bool {
        code == .server && message.contains("Function not found")
    }
}
