/// What the write side remembers of one message: enough to check replies and removals.
public struct MessageRecord: Sendable, Hashable, Codable {
    public var senderId: AccountID
    public var replyTo: MessageID?
    public var removed: Bool

    public init(senderId: AccountID, replyTo: MessageID? = nil, removed: Bool = false) {
        self.senderId = senderId
        self.replyTo = replyTo
        self.removed = removed
    }
}

/// The decision state of one thread, built by `ThreadDecider.evolve`.
/// Its Codable form (JSON, absent optionals omitted, `messages` an object
/// keyed by message id) is the snapshot format.
public struct ThreadState: Sendable, Hashable, Codable {
    public var id: ThreadID
    public var creatorId: AccountID
    public var parentThreadId: ThreadID?
    public var title: String
    public var remarks: String?
    /// In join order, each once.
    public var administratorIds: [AccountID]
    /// In join order, each once; independent of `administratorIds`.
    public var memberIds: [AccountID]
    /// Every message after a full replay; the store may load only the ones a
    /// command references (`ThreadCommand.referencedMessageIds`) from its index.
    public var messages: [MessageID: MessageRecord]
    public var createdAt: Int64
    public var updatedAt: Int64
    public var destroyedAt: Int64?
    public var version: Int64

    public init(
        id: ThreadID,
        creatorId: AccountID,
        parentThreadId: ThreadID? = nil,
        title: String,
        remarks: String? = nil,
        administratorIds: [AccountID],
        memberIds: [AccountID],
        messages: [MessageID: MessageRecord] = [:],
        createdAt: Int64,
        updatedAt: Int64,
        destroyedAt: Int64? = nil,
        version: Int64
    ) {
        self.id = id
        self.creatorId = creatorId
        self.parentThreadId = parentThreadId
        self.title = title
        self.remarks = remarks
        self.administratorIds = administratorIds
        self.memberIds = memberIds
        self.messages = messages
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.destroyedAt = destroyedAt
        self.version = version
    }

    public var isDestroyed: Bool { destroyedAt != nil }

    public func isAdministrator(_ accountId: AccountID) -> Bool { administratorIds.contains(accountId) }

    public func isMember(_ accountId: AccountID) -> Bool { memberIds.contains(accountId) }

    /// An administrator or a member.
    public func isParticipant(_ accountId: AccountID) -> Bool { isAdministrator(accountId) || isMember(accountId) }

    /// The message exists in this thread and has not been removed.
    public func isLiveMessage(_ messageId: MessageID) -> Bool { messages[messageId].map { !$0.removed } ?? false }
}
