/// One message as recorded: the text is already trimmed and the mentions folded.
public struct AddedMessage: Sendable, Hashable, Codable {
    public var id: MessageID
    public var senderId: AccountID
    public var text: String
    public var replyTo: MessageID?
    public var mentions: [AccountID]

    public init(id: MessageID, senderId: AccountID, text: String, replyTo: MessageID? = nil, mentions: [AccountID] = []) {
        self.id = id
        self.senderId = senderId
        self.text = text
        self.replyTo = replyTo
        self.mentions = mentions
    }
}

/// The `ThreadCreated` data: the normalised create command (trimmed title,
/// creator among the administrators, ids folded).
public struct ThreadCreated: Sendable, Hashable, Codable {
    public var threadId: ThreadID
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
        administratorIds: [AccountID],
        memberIds: [AccountID]
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

/// A past-tense fact about one thread. Each case carries only what changed;
/// the wire form is in docs/ARCHITECTURE.md ("Event wire format").
public enum ThreadEvent: Sendable, Hashable {
    case threadCreated(ThreadCreated)
    case threadDestroyed
    case administratorIdsJoined([AccountID])
    case administratorIdsLeft([AccountID])
    case memberIdsJoined([AccountID])
    case memberIdsLeft([AccountID])
    case messagesAdded([AddedMessage])
    case messagesRemoved([MessageID])

    /// The stream entry's `type` field.
    public var typeName: String {
        switch self {
        case .threadCreated: "ThreadCreated"
        case .threadDestroyed: "ThreadDestroyed"
        case .administratorIdsJoined: "AdministratorIdsJoined"
        case .administratorIdsLeft: "AdministratorIdsLeft"
        case .memberIdsJoined: "MemberIdsJoined"
        case .memberIdsLeft: "MemberIdsLeft"
        case .messagesAdded: "MessagesAdded"
        case .messagesRemoved: "MessagesRemoved"
        }
    }

    /// Adds messages and nothing else: such events commute with each other
    /// (none changes who takes part, whether the thread lives, or whether a
    /// message does), which lets a post land after others' posts.
    public var addsMessagesOnly: Bool {
        if case .messagesAdded = self { true } else { false }
    }
}

/// An event with the envelope the stream entry gives it.
public struct RecordedEvent: Sendable, Hashable {
    /// The stream entry id's first part: 1 for `ThreadCreated`, then one per event.
    public var version: Int64
    /// Unix milliseconds.
    public var at: Int64
    public var actor: AccountID
    public var commandId: String
    public var event: ThreadEvent

    public init(version: Int64, at: Int64, actor: AccountID, commandId: String, event: ThreadEvent) {
        self.version = version
        self.at = at
        self.actor = actor
        self.commandId = commandId
        self.event = event
    }
}
