public import Logging
public import RedisClient
import EventStore

/// Sends the read side's commands through `LibraryCalls` (which loads the
/// `threadweave_rm` library when a server lost it), as read-model errors.
public struct ReadModelRedis: Sendable {
    private let calls: LibraryCalls
    private let logger: Logger

    public var executor: any RedisCommandExecutor { calls.executor }

    public init(_ executor: any RedisCommandExecutor, logger: Logger) {
        calls = LibraryCalls(executor, library: ReadModelLibrary.library, logger: logger)
        self.logger = logger
    }

    @discardableResult
    func send(_ command: RedisCommand) async throws(ReadModelError) -> RedisValue {
        do {
            return try await calls.send(command)
        } catch {
            throw ReadModelError(redisError: error, command: command.name)
        }
    }

    func execute<Call: RedisCall>(_ call: Call) async throws(ReadModelError) -> Call.Reply {
        do {
            return try await calls.execute(call)
        } catch {
            throw ReadModelError(redisError: error, command: call.command.name)
        }
    }

    /// Sends the commands back to back; a failed reply fails the whole call.
    func pipeline(_ commands: [RedisCommand]) async throws(ReadModelError) -> [RedisValue] {
        let results = try await pipelineResults(commands)
        var replies: [RedisValue] = []
        replies.reserveCapacity(results.count)
        for (command, result) in zip(commands, results) {
            switch result {
            case .success(let reply): replies.append(reply)
            case .failure(let error): throw ReadModelError(redisError: error, command: command.name)
            }
        }
        return replies
    }

    /// Sends the commands back to back: each reply, or its command's error,
    /// in order. Throws only when the connection fails them all.
    func pipelineResults(_ commands: [RedisCommand]) async throws(ReadModelError) -> [Result<RedisValue, RedisError>] {
        guard !commands.isEmpty else { return [] }
        do {
            return try await calls.pipeline(commands)
        } catch {
            throw ReadModelError(redisError: error, command: commands[0].name)
        }
    }

    /// Loads the library now (a worker's start), rather than at the first
    /// missing function. A user the ACL does not let load libraries (the
    /// runtime user) goes on with the one `threadweave setup` loaded.
    func loadLibrary() async throws(ReadModelError) {
        do {
            for primary in try await executor.primaryExecutors() {
                _ = try await primary.send(ReadModelLibrary.library.loadCommand)
            }
        } catch let error where error.isPermissionDenied {
            logger.info("this Redis user may not load Function libraries; using the \(ReadModelLibrary.name) library set-up loaded")
        } catch {
            throw ReadModelError(.unavailable, "could not load the \(ReadModelLibrary.name) library", underlying: error)
        }
    }
}
