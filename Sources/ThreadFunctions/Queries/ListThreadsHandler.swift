public import ReadModel
public import ThreadDomain

/// `GET /v1/threads?accountId=&offset=&limit=`.
public struct ListThreadsInput: Decodable, Sendable, Hashable {
    public var accountId: AccountID
    /// Default 0.
    public var offset: QueryInteger?
    /// 1–100, default 20; larger values are cut to 100.
    public var limit: QueryInteger?
}

/// One thread of the list: the thread view plus its last activity.
public struct ListedThreadAnswer: Encodable, Sendable, Hashable {
    public var thread: ThreadView
    /// When the thread's last event happened (unix ms): the list's order.
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
    public var offset: Int
    public var limit: Int
    /// Threads the account takes part in, across all pages.
    public var total: Int
    /// Latest activity first; destroyed threads and threads the account left are not listed.
    public var threads: [ListedThreadAnswer]
}

public struct ListThreadsHandler: RegistrableFunction {
    public static let name = "list-threads"
    public static let kind = FunctionKind.query
    static let defaultLimit = 20
    private let backend: QueryBackend?

    public init(dependencies: FunctionDependencies) {
        backend = QueryBackend(dependencies)
    }

    public func handle(_ input: ListThreadsInput, context: FunctionContext) async throws(FunctionError) -> ThreadsAnswer {
        let backend = try QueryBackend.require(backend)
        let limit = try PageLimit.resolve(input.limit, default: Self.defaultLimit)
        let offset = input.offset?.value ?? 0
        guard (0...Int64(Int32.max)).contains(offset) else { throw FunctionError(.invalidRequest, "offset must not be negative") }
        let listing = try await backend.read { reader throws(ReadModelError) in
            try await reader.threads(of: input.accountId, offset: Int(offset), limit: limit)
        }
        return ThreadsAnswer(
            accountId: input.accountId, offset: Int(offset), limit: limit, total: listing.total,
            threads: listing.threads.map { ListedThreadAnswer(thread: $0.thread, lastActivityAt: $0.lastActivityAt) })
    }
}
