public import Logging
public import RedisClient
import EventStore

/// Sends the read side's commands; when Redis says the `threadweave_rm`
/// library is missing (a fresh or restarted server without persistence),
/// loads it and tries once more.
public struct ReadModelRedis: Sendable {
    public let executor: any RedisCommandExecutor
    let logger: Logger

    public init(_ executor: any RedisCommandExecutor, logger: Logger) {
        self.executor = executor
        self.logger = logger
    }

    @discardableResult
    func send(_ command: RedisCommand) async throws(ReadModelError) -> RedisValue {
        do {
            return try await executor.send(command)
        } catch let error where error.code == .server && error.message.contains("Function not found") {
            logger.notice("threadweave_rm library missing on the server: loading it")
            try await loadLibrary()
            do {
                return try await executor.send(command)
            } catch {
                throw ReadModelError(redisError: error, command: command.name)
            }
        } catch {
            throw ReadModelError(redisError: error, command: command.name)
        }
    }

    /// Sends the commands back to back; a failed reply fails the whole call.
    func pipeline(_ commands: [RedisCommand]) async throws(ReadModelError) -> [RedisValue] {
        guard !commands.isEmpty else { return [] }
        let results: [Result<RedisValue, RedisError>]
        do {
            results = try await executor.pipeline(commands)
        } catch {
            throw ReadModelError(redisError: error, command: commands[0].name)
        }
        var replies: [RedisValue] = []
        replies.reserveCapacity(results.count)
        for (command, result) in zip(commands, results) {
            switch result {
            case .success(let reply): replies.append(reply)
            case .failure(let error) where error.message.contains("Function not found"):
                // Rare (a restarted server): load the library and send them again one by one.
                try await loadLibrary()
                return try await sendEach(commands)
            case .failure(let error): throw ReadModelError(redisError: error, command: command.name)
            }
        }
        return replies
    }

    private func sendEach(_ commands: [RedisCommand]) async throws(ReadModelError) -> [RedisValue] {
        var replies: [RedisValue] = []
        for command in commands { replies.append(try await send(command)) }
        return replies
    }

    func loadLibrary() async throws(ReadModelError) {
        do {
            try await StoreSetup.loadLibrary(ReadModelLibrary.library, on: executor)
        } catch {
            throw ReadModelError(.unavailable, "could not load the \(ReadModelLibrary.name) library", underlying: error)
        }
    }
}
