import EventStore
import Logging
import ReadModel
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

/// What the query functions read through: the process's read model, and
/// the event store for the write side's answer when the read model is behind.
struct QueryBackend: Sendable {
    let reader: ReadModelReader
    let watcher: ThreadWatcher?
    let store: any EventStore

    /// Nil when the process has no read model (in-memory tests of the command layer).
    init?(_ dependencies: FunctionDependencies) {
        guard let reader = dependencies.readModel else { return nil }
        self.reader = reader
        watcher = dependencies.watcher
        store = dependencies.commandRunner.store
    }

    static func require(_ backend: QueryBackend?) throws(FunctionError) -> QueryBackend {
        guard let backend else { throw FunctionError(.unavailable, "the read model is not available in this process") }
        return backend
    }

    /// The checks every thread query makes: the thread exists (404), is not
    /// destroyed (410), and the account takes part (403), on a read model at
    /// `minVersion` or later. When the read model is behind, the write side
    /// answers first — the same checks, and a `minVersion` above the thread's
    /// version is refused (400) — so only a wait that can succeed waits
    /// (bounded; 504 `timeout` when not reached, 503 when too many wait).
    func authorize(_ threadId: ThreadID, for accountId: AccountID, minVersion: QueryInteger?) async throws(FunctionError) -> ThreadView {
        var access = try await read { reader throws(ReadModelError) in try await reader.access(threadId, for: accountId) }
        if let minVersion {
            guard minVersion.value >= 0 else { throw FunctionError(.invalidRequest, "minVersion must not be negative") }
            if (access.thread?.version ?? 0) < minVersion.value {
                try await checkWriteSide(threadId, for: accountId, minVersion: minVersion.value)
                try await read { reader throws(ReadModelError) in try await reader.waitForVersion(minVersion.value, of: threadId) }
                access = try await read { reader throws(ReadModelError) in try await reader.access(threadId, for: accountId) }
            }
        }
        if let refusal = ReadAccess.refusal(
            of: threadId, for: accountId, exists: access.thread != nil, isDestroyed: access.thread?.isDestroyed ?? false,
            isParticipant: access.isParticipant)
        {
            throw FunctionError(domainError: refusal)
        }
        return access.thread!
    }

    private func checkWriteSide(_ threadId: ThreadID, for accountId: AccountID, minVersion: Int64) async throws(FunctionError) {
        let loaded: LoadedThread
        do {
            loaded = try await store.load(threadId, since: nil, messageIds: [], commandId: nil)
        } catch {
            throw FunctionError(storeError: error)
        }
        if let refusal = ReadAccess.refusal(of: loaded.state, threadId, for: accountId) { throw FunctionError(domainError: refusal) }
        let version = loaded.state?.version ?? 0
        guard minVersion <= version else {
            throw FunctionError(.invalidRequest, "minVersion \(minVersion) is above the thread's version \(version)")
        }
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
        case .unavailable: self.init(.unavailable, error.message, underlying: error)
        case .timeout: self.init(.timeout, error.message, underlying: error)
        case .corruptData, .unexpectedReply, .unclosableGap, .locked:
            self.init(.internalError, "the read model failed", underlying: error)
        }
    }
}
