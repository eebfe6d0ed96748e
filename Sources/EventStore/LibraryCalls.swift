public import Logging
public import RedisClient

/// Sends commands that call a Function library. When Redis says a function
/// is missing (a fresh server, or one restarted without persistence), loads
/// the library and sends once more: the one place that knows how, for the
/// event store and the read model alike.
public struct LibraryCalls: Sendable {
    public let executor: any RedisCommandExecutor
    public let library: StoreSetup.Library
    private let logger: Logger

    public init(_ executor: any RedisCommandExecutor, library: StoreSetup.Library, logger: Logger) {
        self.executor = executor
        self.library = library
        self.logger = logger
    }

    public func send(_ command: RedisCommand) async throws(RedisError) -> RedisValue {
        do {
            return try await executor.send(command)
        } catch let error where error.isFunctionMissing {
            try await loadLibrary()
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
        try await loadLibrary()
        return try await executor.pipeline(commands)
    }

    private func loadLibrary() async throws(RedisError) {
        logger.notice("\(library.name) library missing on the server: loading it")
        _ = try await executor.send(library.loadCommand)
    }
}

extension RedisError {
    /// `ERR Function not found`: the library is not loaded on this server.
    public var isFunctionMissing: Bool {
        code == .server && message.contains("Function not found")
    }
}
