public import ReadModel
public import ThreadDomain

/// `GET /v1/threads?accountId=&cursor=&limit=`.
public struct ListThreadsInput: Decodable, Sendable, Hashable {
    public var accountId: AccountID
    /// The previous page's `nextCursor`; opaque to clients. Absent: the first page.
    public var cursor: String?
    /// 1–100, default 20; larger values are cut to 100.
    public var limit: QueryInteger?
}

/// One thread of the list: the thread view plus its last activity.
public struct ListedThreadAnswer: Encodable, Sendable, Hashable {
    public var thread: ThreadView
    /// When the thread's last event happened (unix ms) as of the paging's
    /// first page: the list's order, fixed for the whole paging.
    public var lastActivityAt: Int64

    public func encode(to encoder: any Encoder) throws {
        try thread.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(lastActivityAt, forKey: .lastActivityAt)
    }

    private enum CodingKeys: String, CodingKey { case lastActivityAt }
}

public struct ThreadsAnswer: Encodable, Sendable, Hashable {
    public var accountId: AccountID
    public var limit: Int
    /// Threads the account takes part in, across all pages.
    public var total: Int
    /// Latest activity first; destroyed threads and threads the account left are not listed.
    public var threads: [ListedThreadAnswer]
    /// Pass as `cursor` for the next page; absent on the last page.
    public var nextCursor: String?
}

public struct ListThreadsHandler: RegistrableFunction {
    public static let name = "list-threads"
    public static let kind = FunctionKind.query
    static let defaultLimit = 20
    private let backend: QueryBackend?

    public init(dependencies: FunctionDependencies) {
        backend = QueryBackend(dependencies)
    }

    /// How far the paging's instant lies before the first page's clock. A
    /// command's events are stamped when it is decided and land a little
    /// later; an event stamped at or before the instant that landed after a
    /// page was read would move its thread ahead of the cursor, and the
    /// paging would skip it. So the margin is longer than a command takes from
    /// decision to landing, plus any difference between the clocks of the
    /// processes that decide and list.
    public static let instantMargin: Int64 = 250

    /// The first page fixes the instant the whole paging orders by, and every
    /// cursor carries it: threads keep their places however active they are
    /// meanwhile, so a paging lists each thread the account stays in exactly once.
    public func handle(_ input: ListThreadsInput, context: FunctionContext) async throws(FunctionError) -> ThreadsAnswer {
        let backend = try QueryBackend.require(backend)
        let limit = try PageLimit.resolve(input.limit, default: Self.defaultLimit)
        let cursor = try input.cursor.map { text throws(FunctionError) in try ThreadListCursor(decoding: text) }
        let instant = cursor?.instant ?? CommandRunner.currentTimeMilliseconds() - Self.instantMargin
        let listing = try await backend.read { reader throws(ReadModelError) in
            try await reader.threads(of: input.accountId, asOf: instant, after: cursor?.position, limit: limit)
        }
        return ThreadsAnswer(
            accountId: input.accountId, limit: limit, total: listing.total,
            threads: listing.threads.map { ListedThreadAnswer(thread: $0.thread, lastActivityAt: $0.lastActivityAt) },
            nextCursor: listing.next.map { ThreadListCursor(instant: instant, position: $0).encoded })
    }
}
