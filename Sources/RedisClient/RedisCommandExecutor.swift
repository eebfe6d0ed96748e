/// Anything that runs commands: the pool and a single connection.
public protocol RedisCommandExecutor: Sendable {
    /// Sends one command and waits for its reply (within the configured command timeout).
    func send(_ command: RedisCommand) async throws(RedisError) -> RedisValue

    /// Sends all commands back to back on one connection and returns each reply in order;
    /// a server error reply for one command does not fail the others. Failures of the
    /// connection itself (closed, timed out) are thrown, since they befall every command.
    func pipeline(_ commands: [RedisCommand]) async throws(RedisError) -> [Result<RedisValue, RedisError>]
}
