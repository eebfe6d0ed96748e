/// One message of an add-messages command. The id is always present: the
/// adapter generates one when the client didn't supply it.
public struct NewMessage: Sendable, Hashable {
    public var id: MessageID
    public var text: String
    public var replyTo: MessageID?
    public var mentions: [AccountID]

    public init(id: MessageID, text: String, replyTo: MessageID? = nil, mentions: [AccountID] = []) {
        self.id = id
        self.text = text
        self.replyTo = replyTo
        self.mentions = mentions
    }
}

public struct CreateThread: Sendable, Hashable {
    public var threadId: ThreadID
    /// Must be the acting account.
    public var creatorId: AccountID
    public var parentThreadId: ThreadID?
    public var title: String
    public var remarks: String?
    public var administratorIds: [AccountID]
    public var memberIds: [AccountID]

    public init(
        threadId: ThreadID,
        creatorId: AccountID,
        parentThreadId: ThreadID? = nil,
        title: String,
        remarks: String? = nil,
        administratorIds: [AccountID] = [],
        memberIds: [AccountID] = []
    ) {
        self.threadId = threadId
        self.creatorId = creatorId
        self.parentThreadId = parentThreadId
        self.title = title
        self.remarks = remarks
        self.administratorIds = administratorIds
        self.memberIds = memberIds
    }
}

/// What an account asks of one thread. The acting account is passed to
/// `ThreadDecider.decide` beside the command.
public enum ThreadCommand: Sendable, Hashable {
    case createThread(CreateThread)
    case destroyThread
    case joinAdministrators([AccountID])
    case leaveAdministrators([AccountID])
    case joinMembers([AccountID])
    case leaveMembers([AccountID])
    case addMessages([NewMessage])
    case removeMessages([MessageID])

    /// Message ids whose write-side records `decide` needs (reply targets,
    /// client-supplied new ids, ids to remove), without repeats — the store
    /// loads just these into `ThreadState.messages`.
    public var referencedMessageIds: [MessageID] {
        switch self {
        case .addMessages(let messages):
            return messages.flatMap { [$0.id] + ($0.replyTo.map { [$0] } ?? []) }.removingDuplicates()
        case .removeMessages(let messageIds):
            return messageIds.removingDuplicates()
        case .createThread, .destroyThread, .joinAdministrators, .leaveAdministrators, .joinMembers, .leaveMembers:
            return []
        }
    }

    /// Posts that reply to nothing: deciding them needs no message record,
    /// only that their ids are new (which an append of posts checks).
    public var isPostWithoutReplies: Bool {
        guard case .addMessages(let messages) = self else { return false }
        return messages.allSatisfy { $0.replyTo == nil }
    }

    /// The function name of DESIGN §4 that carries this command.
    public var name: String {
        switch self {
        case .createThread: "create-thread"
        case .destroyThread: "destroy-thread"
        case .joinAdministrators: "join-administrators"
        case .leaveAdministrators: "leave-administrators"
        case .joinMembers: "join-members"
        case .leaveMembers: "leave-members"
        case .addMessages: "add-messages"
        case .removeMessages: "remove-messages"
        }
    }
}

extension Array where Element: Hashable {
    /// The elements in their first-seen order, each once.
    func removingDuplicates() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
