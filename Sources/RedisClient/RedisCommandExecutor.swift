/// Anything that runs commands: the pool and a single connection.
public protocol RedisCommandExecutor: Sendable {
    /// Sends one command and waits for its reply (within the configured command timeout).
    func send(_ command: RedisCommand) async throws(RedisError) -> RedisValue

    /// Sends all commands back to back on one connection and returns each reply in order;
    /// a server error reply for one command does not fail the others. Failures of the
    /// connection itself (closed, timed out) are thrown, since they befall every command.
    func pipeline(_ commands: [RedisCommand]) async throws(RedisError) -> [Result<RedisValue, RedisError>]

    /// Sends a keyless command to the node that serves `key`: `FUNCTION LOAD`
    /// where a call of that key met a missing function. On one node, `send`.
    func send(_ command: RedisCommand, toNodeOf key: String) async throws(RedisError) -> RedisValue

    /// One executor per primary node, for what every node must have or
    /// answer (`FUNCTION LOAD`, readiness, `SCAN`). On one node, itself.
    func primaryExecutors() async throws(RedisError) -> [any RedisCommandExecutor]
}

extension RedisCommandExecutor {
    public func send(_ command: RedisCommand, toNodeOf key: String) async throws(RedisError) -> RedisValue {
        try await send(command)
    }

    public func primaryExecutors() async throws(RedisError) -> [any RedisCommandExecutor] {
        [self]
    }
}
