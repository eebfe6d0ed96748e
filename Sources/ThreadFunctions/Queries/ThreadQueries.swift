public import ReadModel
public import ThreadDomain

/// `GET /v1/threads/{threadId}?accountId=&minVersion=`.
public struct ThreadQueryInput: Decodable, Sendable, Hashable {
    public var threadId: ThreadID
    /// The asking account: a participant of the thread.
    public var accountId: AccountID
    /// Wait (bounded) until the read model has reached this version: read-your-writes.
    public var minVersion: QueryInteger?
}

/// get-thread answers the view itself; its `version` is the `ETag`.
extension ThreadView: ReadModelVersioned {}

public struct GetThreadHandler: RegistrableFunction {
    public static let name = "get-thread"
    public static let kind = FunctionKind.query
    private let backend: QueryBackend?

    public init(dependencies: FunctionDependencies) {
        backend = QueryBackend(dependencies)
    }

    /// The thread view; its `version` is the response's `ETag`.
    public func handle(_ input: ThreadQueryInput, context: FunctionContext) async throws(FunctionError) -> ThreadView {
        try await QueryBackend.require(backend).authorize(input.threadId, for: input.accountId, minVersion: input.minVersion)
    }
}

/// `GET /v1/threads/{threadId}/administrator-ids` and `/member-ids`, with
/// `?accountId=&cursor=&limit=&minVersion=`.
public struct ParticipantListInput: Decodable, Sendable, Hashable {
    public var threadId: ThreadID
    public var accountId: AccountID
    /// The previous page's `nextCursor`; opaque to clients.
    public var cursor: String?
    /// 1–100, default 100; larger values are cut to 100.
    public var limit: QueryInteger?
    public var minVersion: QueryInteger?
}

/// The answer of list-administrators (`administrators`) and list-members (`members`).
public struct ParticipantsAnswer: Encodable, Sendable, Hashable, ReadModelVersioned {
    public var threadId: ThreadID
    /// The read model's version of the thread: the `ETag`.
    public var version: Int64
    public var participants: [ParticipantView]
    /// Pass as `cursor` for the next page; absent on the last page.
    public var nextCursor: String?
    let listName: String

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(threadId, forKey: Key(stringValue: "threadId"))
        try container.encode(version, forKey: Key(stringValue: "version"))
        try container.encode(participants, forKey: Key(stringValue: listName))
        try container.encodeIfPresent(nextCursor, forKey: Key(stringValue: "nextCursor"))
    }
}

/// list-administrators and list-members differ only in the list they read and its name.
/// Pages follow join order (ties by account id); a cursor names the last
/// participant of its page as `<joinedAt>.<accountId>`, so a page never
/// skips or repeats one that stays, whatever joins or leaves meanwhile.
private struct ParticipantListing: Sendable {
    static let defaultLimit = 100
    let backend: QueryBackend?
    let listName: String
    let list: @Sendable (ReadModelReader, ThreadID) async throws(ReadModelError) -> [ParticipantView]

    func run(_ input: ParticipantListInput) async throws(FunctionError) -> ParticipantsAnswer {
        let backend = try QueryBackend.require(backend)
        let limit = try PageLimit.resolve(input.limit, default: Self.defaultLimit)
        let after = try input.cursor.map(Self.position(of:))
        let thread = try await backend.authorize(input.threadId, for: input.accountId, minVersion: input.minVersion)
        let participants = try await backend.read { reader throws(ReadModelError) in try await list(reader, input.threadId) }
        let rest = after.map { after in participants.filter { Self.position($0) > after } } ?? participants
        let page = Array(rest.prefix(limit))
        let nextCursor = rest.count > limit ? page.last.map { "\($0.joinedAt).\($0.accountId)" } : nil
        return ParticipantsAnswer(
            threadId: thread.id, version: thread.version, participants: page, nextCursor: nextCursor, listName: listName)
    }

    private static func position(_ participant: ParticipantView) -> Position {
        Position(joinedAt: participant.joinedAt, accountId: participant.accountId.rawValue)
    }

    private static func position(of cursor: String) throws(FunctionError) -> Position {
        let parts = cursor.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let joinedAt = Int64(parts[0]), let accountId = AccountID(String(parts[1])) else {
            throw FunctionError(.invalidRequest, "cursor is not a cursor this list gave out")
        }
        return Position(joinedAt: joinedAt, accountId: accountId.rawValue)
    }

    private struct Position: Comparable {
        var joinedAt: Int64
        var accountId: String
        static func < (lhs: Position, rhs: Position) -> Bool { (lhs.joinedAt, lhs.accountId) < (rhs.joinedAt, rhs.accountId) }
    }
}

public struct ListAdministratorsHandler: RegistrableFunction {
    public static let name = "list-administrators"
    public static let kind = FunctionKind.query
    private let listing: ParticipantListing

    public init(dependencies: FunctionDependencies) {
        listing = ParticipantListing(backend: QueryBackend(dependencies), listName: "administrators") {
            reader, threadId throws(ReadModelError) in try await reader.administrators(of: threadId)
        }
    }

    /// `{"threadId","version","administrators":[{"accountId","joinedAt","addedBy"}],"nextCursor"?}`, in join order.
    public func handle(_ input: ParticipantListInput, context: FunctionContext) async throws(FunctionError) -> ParticipantsAnswer {
        try await listing.run(input)
    }
}

public struct ListMembersHandler: RegistrableFunction {
    public static let name = "list-members"
    public static let kind = FunctionKind.query
    private let listing: ParticipantListing

    public init(dependencies: FunctionDependencies) {
        listing = ParticipantListing(backend: QueryBackend(dependencies), listName: "members") {
            reader, threadId throws(ReadModelError) in try await reader.members(of: threadId)
        }
    }

    /// `{"threadId","version","members":[{"accountId","joinedAt","addedBy"}],"nextCursor"?}`, in join order.
    public func handle(_ input: ParticipantListInput, context: FunctionContext) async throws(FunctionError) -> ParticipantsAnswer {
        try await listing.run(input)
    }
}

/// `GET /v1/threads/{threadId}/messages?accountId=&cursor=&limit=&minVersion=`.
public struct ListMessagesInput: Decodable, Sendable, Hashable {
    public var threadId: ThreadID
    public var accountId: AccountID
    /// The previous page's `nextCursor`; opaque to clients. Absent: the first page.
    public var cursor: String?
    /// 1–100, default 50; larger values are cut to 100.
    public var limit: QueryInteger?
    public var minVersion: QueryInteger?
}

public struct MessagesAnswer: Encodable, Sendable, Hashable, ReadModelVersioned {
    public var threadId: ThreadID
    public var version: Int64
    /// Live messages in timeline (append) order.
    public var messages: [MessageView]
    /// Pass as `cursor` for the next page; absent on the last page.
    public var nextCursor: String?
}

public struct ListMessagesHandler: RegistrableFunction {
    public static let name = "list-messages"
    public static let kind = FunctionKind.query
    static let defaultLimit = 50
    private let backend: QueryBackend?

    public init(dependencies: FunctionDependencies) {
        backend = QueryBackend(dependencies)
    }

    public func handle(_ input: ListMessagesInput, context: FunctionContext) async throws(FunctionError) -> MessagesAnswer {
        let backend = try QueryBackend.require(backend)
        let limit = try PageLimit.resolve(input.limit, default: Self.defaultLimit)
        let cursor = try input.cursor.map { text throws(FunctionError) in try MessageListCursor(decoding: text) }
        let thread = try await backend.authorize(input.threadId, for: input.accountId, minVersion: input.minVersion)
        let page = try await backend.read { reader throws(ReadModelError) in
            try await reader.messages(of: input.threadId, after: cursor?.position, limit: limit)
        }
        return MessagesAnswer(
            threadId: thread.id, version: thread.version, messages: page.messages,
            nextCursor: page.next.map { MessageListCursor(position: $0).encoded })
    }
}
