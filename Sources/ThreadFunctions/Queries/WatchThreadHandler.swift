public import EventStore
public import ThreadDomain

/// `GET /v1/threads/{threadId}/events?accountId=` with `Last-Event-ID`.
public struct WatchThreadInput: Decodable, Sendable, Hashable {
    public var threadId: ThreadID
    public var accountId: AccountID
    /// The SSE `Last-Event-ID` (a version): resume after that event. Absent: only new events.
    public var lastEventId: QueryInteger?

    public init(threadId: ThreadID, accountId: AccountID, lastEventId: QueryInteger? = nil) {
        self.threadId = threadId
        self.accountId = accountId
        self.lastEventId = lastEventId
    }
}

/// A checked watch of one thread. `run` delivers its events (and heartbeats
/// while idle) until the thread is destroyed, the account stops taking part,
/// or `deliver` throws because the client went away. Push-style rather than
/// an `AsyncSequence`, so the blocking connection lives in the caller's task
/// (structured, no background task) and closes when the response ends.
public struct ThreadFeed: Encodable, Sendable {
    public var threadId: ThreadID
    /// Events after this version are delivered.
    public var after: Int64
    let subscription: ThreadWatcher.Subscription
    let watcher: ThreadWatcher

    public func run(_ deliver: @concurrent (ThreadWatcher.Item) async throws -> Void) async throws {
        try await watcher.stream(subscription, deliver: deliver)
    }

    /// Ends `run` from any task (the client went away while the thread is quiet).
    public func stop() {
        subscription.stop()
    }

    private enum CodingKeys: String, CodingKey { case threadId, after }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(threadId, forKey: .threadId)
        try container.encode(after, forKey: .after)
    }
}

public struct WatchThreadHandler: RegistrableFunction {
    public static let name = "watch-thread"
    public static let kind = FunctionKind.stream
    private let backend: QueryBackend?

    public init(dependencies: FunctionDependencies) {
        backend = QueryBackend(dependencies)
    }

    /// Checks access on the write side (404 / 410 / 403) before the stream
    /// starts, so the edge can still answer with an error status.
    public func handle(_ input: WatchThreadInput, context: FunctionContext) async throws(FunctionError) -> ThreadFeed {
        guard let watcher = try QueryBackend.require(backend).watcher else {
            throw FunctionError(.unavailable, "watching needs a Redis connection pool")
        }
        if let lastEventId = input.lastEventId, lastEventId.value < 0 {
            throw FunctionError(.invalidRequest, "Last-Event-ID must be a version (0 or more)")
        }
        do {
            let subscription = try await watcher.subscribe(to: input.threadId, as: input.accountId, lastEventId: input.lastEventId?.value)
            return ThreadFeed(threadId: input.threadId, after: subscription.after, subscription: subscription, watcher: watcher)
        } catch {
            switch error {
            case .refused(let domainError):
                throw FunctionError(domainError: domainError)
            case .tooManyStreams(let perAccount):
                throw FunctionError(
                    .tooManyStreams,
                    perAccount
                        ? "account \(input.accountId) has too many open watch streams; close one first"
                        : "this process has too many open watch streams; try again later")
            case .failed(let storeError):
                throw FunctionError(storeError: storeError)
            }
        }
    }
}
