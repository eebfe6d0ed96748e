import EventStore
import Logging
import ReadModel
import RedisClient
import ThreadDomain

/// An integer query parameter: REST routes pass it as a string
/// (`?limit=20`), `POST /function/<name>` as a JSON number; both decode.
public struct QueryInteger: Decodable, Sendable, Hashable {
    public var value: Int64

    public init(_ value: Int64) {
        self.value = value
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int64.self) {
            value = number
        } else if let text = try? container.decode(String.self), let number = Int64(text) {
            value = number
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an integer")
        }
    }
}

/// What the query functions read through. Built from the process's
/// dependencies: the command runner's Redis event store carries the
/// connection and key layout the read model shares.
struct QueryBackend: Sendable {
    let reader: ReadModelReader
    let watcher: ThreadWatcher?

    static let logger = Logger(label: "threadweave.queries")

    /// Nil when the process has no Redis store (in-memory tests of the command layer).
    init?(_ dependencies: FunctionDependencies) {
        guard let store = dependencies.commandRunner.store as? RedisEventStore else { return nil }
        reader = ReadModelReader(redis: store.redis, layout: store.layout, logger: Self.logger)
        // Watching needs dedicated connections for XREAD BLOCK: only a pool gives them.
        watcher = (store.redis as? RedisConnectionPool).map { ThreadWatcher(pool: $0, layout: store.layout, logger: Self.logger) }
    }

    static func require(_ backend: QueryBackend?) throws(FunctionError) -> QueryBackend {
        guard let backend else { throw FunctionError(.unavailable, "the read model is not available in this process") }
        return backend
    }

    /// The checks every thread query makes, in DESIGN's order: wait for
    /// `minVersion` (bounded; 504 `timeout` when not reached), then the thread
    /// exists (404), is not destroyed (410), and the account takes part (403).
    func authorize(_ threadId: ThreadID, for accountId: AccountID, minVersion: QueryInteger?) async throws(FunctionError) -> ThreadView {
        if let minVersion {
            guard minVersion.value >= 0 else { throw FunctionError(.invalidRequest, "minVersion must not be negative") }
            try await read { reader throws(ReadModelError) in try await reader.waitForVersion(minVersion.value, of: threadId) }
        }
        let access = try await read { reader throws(ReadModelError) in try await reader.access(threadId, for: accountId) }
        guard let thread = access.thread else { throw FunctionError(.threadNotFound, "thread \(threadId) does not exist") }
        guard !thread.isDestroyed else { throw FunctionError(.threadDestroyed, "thread \(threadId) was destroyed") }
        guard access.isParticipant else {
            throw FunctionError(.notParticipant, "account \(accountId) does not take part in thread \(threadId)")
        }
        return thread
    }

    /// Runs a read, mapping read-model failures to function errors.
    func read<T>(_ body: (ReadModelReader) async throws(ReadModelError) -> T) async throws(FunctionError) -> T {
        do {
            return try await body(reader)
        } catch {
            throw FunctionError(readModelError: error)
        }
    }
}

/// Page sizes: a default, and a maximum that larger requests are cut to.
enum PageLimit {
    static let maximum = 100

    static func resolve(_ requested: QueryInteger?, default defaultLimit: Int) throws(FunctionError) -> Int {
        guard let requested else { return defaultLimit }
        guard requested.value >= 1 else { throw FunctionError(.invalidRequest, "limit must be at least 1") }
        return Int(min(requested.value, Int64(maximum)))
    }
}

extension FunctionError {
    init(readModelError error: ReadModelError) {
        switch error.code {
        case .unavailable: self.init(.unavailable, "Redis is unavailable", underlying: error)
        case .timeout: self.init(.timeout, error.message, underlying: error)
        default: self.init(.internalError, "the read model failed", underlying: error)
        }
    }
}
