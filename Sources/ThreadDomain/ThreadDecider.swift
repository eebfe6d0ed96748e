/// The thread aggregate as two pure functions: `decide` turns a command into
/// events (or refuses it), `evolve` folds one recorded event into the state.
///
/// `decide` checks in a fixed order, so every refusal is predictable: the
/// thread exists → it is not destroyed → the actor may do this → list sizes →
/// each message or id in request order (its own form, then what it refers to).
public enum ThreadDecider {
    public static func decide(_ state: ThreadState?, _ command: ThreadCommand, actor: AccountID) throws(DomainError) -> [ThreadEvent] {
        switch command {
        case .createThread(let create):
            if let state { throw DomainError(.threadExists, "thread \(state.id) already exists") }
            return [.threadCreated(try threadCreated(create, actor: actor))]
        case .destroyThread:
            let state = try liveThread(state)
            try requireAdministrator(actor, in: state)
            return [.threadDestroyed]
        case .joinAdministrators(let accountIds):
            let state = try liveThread(state)
            try requireAdministrator(actor, in: state)
            try validateAccountIds(accountIds, field: "accountIds", allowEmpty: false)
            return nonEmpty(newIds(accountIds, notIn: state.administratorIds), ThreadEvent.administratorIdsJoined)
        case .leaveAdministrators(let accountIds):
            let state = try liveThread(state)
            try requireAdministratorOrSelf(actor, leaving: accountIds, in: state)
            try validateAccountIds(accountIds, field: "accountIds", allowEmpty: false)
            let leaving = presentIds(accountIds, in: state.administratorIds)
            guard leaving.count < state.administratorIds.count else {
                throw DomainError(.lastAdministrator, "thread \(state.id) must keep at least one administrator")
            }
            return nonEmpty(leaving, ThreadEvent.administratorIdsLeft)
        case .joinMembers(let accountIds):
            let state = try liveThread(state)
            try requireAdministrator(actor, in: state)
            try validateAccountIds(accountIds, field: "accountIds", allowEmpty: false)
            return nonEmpty(newIds(accountIds, notIn: state.memberIds), ThreadEvent.memberIdsJoined)
        case .leaveMembers(let accountIds):
            let state = try liveThread(state)
            try requireAdministratorOrSelf(actor, leaving: accountIds, in: state)
            try validateAccountIds(accountIds, field: "accountIds", allowEmpty: false)
            return nonEmpty(presentIds(accountIds, in: state.memberIds), ThreadEvent.memberIdsLeft)
        case .addMessages(let messages):
            let state = try liveThread(state)
            return [.messagesAdded(try addedMessages(messages, actor: actor, state: state))]
        case .removeMessages(let messageIds):
            let state = try liveThread(state)
            return [.messagesRemoved(try removedMessageIds(messageIds, actor: actor, state: state))]
        }
    }

    /// Folds one event into the state; version and updatedAt come from the envelope.
    /// Total: an event that cannot apply (anything but `ThreadCreated` on no state,
    /// `ThreadCreated` on an existing one) leaves the state's content as it is.
    public static func evolve(_ state: ThreadState?, _ recorded: RecordedEvent) -> ThreadState? {
        guard var state else {
            guard case .threadCreated(let created) = recorded.event else { return nil }
            return ThreadState(
                id: created.threadId,
                creatorId: created.creatorId,
                parentThreadId: created.parentThreadId,
                title: created.title,
                remarks: created.remarks,
                administratorIds: created.administratorIds,
                memberIds: created.memberIds,
                createdAt: recorded.at,
                updatedAt: recorded.at,
                version: recorded.version
            )
        }
        switch recorded.event {
        case .threadCreated:
            break
        case .threadDestroyed:
            state.destroyedAt = recorded.at
        case .administratorIdsJoined(let ids):
            state.administratorIds = (state.administratorIds + ids).removingDuplicates()
        case .administratorIdsLeft(let ids):
            state.administratorIds.removeAll(where: Set(ids).contains)
        case .memberIdsJoined(let ids):
            state.memberIds = (state.memberIds + ids).removingDuplicates()
        case .memberIdsLeft(let ids):
            state.memberIds.removeAll(where: Set(ids).contains)
        case .messagesAdded, .messagesRemoved:
            state.messages.merge(recorded.event.messageIndexUpdates(existing: state.messages)) { $1 }
        }
        state.version = recorded.version
        state.updatedAt = recorded.at
        return state
    }

    public static func replay(_ events: some Sequence<RecordedEvent>, from state: ThreadState? = nil) -> ThreadState? {
        events.reduce(state, evolve)
    }
}

// MARK: - Rules

extension ThreadDecider {
    private static func threadCreated(_ create: CreateThread, actor: AccountID) throws(DomainError) -> ThreadCreated {
        guard create.creatorId == actor else {
            throw DomainError(.invalidRequest, "creatorId \(create.creatorId) is not the acting account \(actor)")
        }
        if create.parentThreadId == create.threadId {
            throw DomainError(.invalidRequest, "parentThreadId \(create.threadId) names the thread itself")
        }
        let title = create.title.trimmingWhiteSpace
        if let violation = InputLimits.title.violation(of: title) {
            throw DomainError(.invalidRequest, "title \(violation)")
        }
        // Whitespace-only remarks carry nothing: recorded as absent.
        let remarks = create.remarks.map(\.trimmingWhiteSpace).flatMap { $0.isEmpty ? nil : $0 }
        if let remarks, let violation = InputLimits.remarks.violation(of: remarks) {
            throw DomainError(.invalidRequest, "remarks \(violation)")
        }
        try validateAccountIds(create.administratorIds, field: "administratorIds", allowEmpty: true)
        try validateAccountIds(create.memberIds, field: "memberIds", allowEmpty: true)
        // The creator is always an administrator: prepended when the list leaves them out.
        let administratorIds = create.administratorIds.contains(create.creatorId)
            ? create.administratorIds
            : [create.creatorId] + create.administratorIds
        return ThreadCreated(
            threadId: create.threadId,
            creatorId: create.creatorId,
            parentThreadId: create.parentThreadId,
            title: title,
            remarks: remarks,
            administratorIds: administratorIds.removingDuplicates(),
            memberIds: create.memberIds.removingDuplicates()
        )
    }

    private static func addedMessages(_ messages: [NewMessage], actor: AccountID, state: ThreadState) throws(DomainError) -> [AddedMessage] {
        guard state.isParticipant(actor) else {
            throw DomainError(.notParticipant, "account \(actor) is not a participant of thread \(state.id)")
        }
        guard InputLimits.messages.contains(messages.count) else {
            throw DomainError(.invalidRequest, "messages must hold 1–100 messages, got \(messages.count)")
        }
        var added: [AddedMessage] = []
        var addedIds = Set<MessageID>()
        for message in messages {
            guard addedIds.insert(message.id).inserted else {
                throw DomainError(.invalidRequest, "message id \(message.id) appears more than once")
            }
            guard state.messages[message.id] == nil else {
                throw DomainError(.messageExists, "message \(message.id) already exists in thread \(state.id)")
            }
            let text = message.text.trimmingWhiteSpace
            if let violation = InputLimits.messageText.violation(of: text) {
                throw DomainError(.invalidRequest, "text of message \(message.id) \(violation)")
            }
            // A reply may target a message added earlier in this same command.
            if let replyTo = message.replyTo, !state.isLiveMessage(replyTo), !added.contains(where: { $0.id == replyTo }) {
                throw DomainError(.messageNotFound, "message \(message.id) replies to \(replyTo), which is not a message of thread \(state.id)")
            }
            try validateAccountIds(message.mentions, field: "mentions", allowEmpty: true)
            if let stranger = message.mentions.first(where: { !state.isParticipant($0) }) {
                throw DomainError(.invalidRequest, "message \(message.id) mentions \(stranger), who is not a participant")
            }
            added.append(AddedMessage(
                id: message.id,
                senderId: actor,
                text: text,
                replyTo: message.replyTo,
                mentions: message.mentions.removingDuplicates()
            ))
        }
        return added
    }

    private static func removedMessageIds(_ messageIds: [MessageID], actor: AccountID, state: ThreadState) throws(DomainError) -> [MessageID] {
        guard InputLimits.messages.contains(messageIds.count) else {
            throw DomainError(.invalidRequest, "messageIds must hold 1–100 ids, got \(messageIds.count)")
        }
        let removing = messageIds.removingDuplicates()
        let isAdministrator = state.isAdministrator(actor)
        for messageId in removing {
            // Already-removed messages count as not found: removing is not idempotent by design.
            guard let record = state.messages[messageId], !record.removed else {
                throw DomainError(.messageNotFound, "message \(messageId) is not a message of thread \(state.id)")
            }
            guard isAdministrator || record.senderId == actor else {
                throw DomainError(.notSender, "account \(actor) did not send message \(messageId) and is not an administrator")
            }
        }
        return removing
    }

    /// Every command but create needs a thread that exists and is not destroyed.
    private static func liveThread(_ state: ThreadState?) throws(DomainError) -> ThreadState {
        guard let state else { throw DomainError(.threadNotFound, "no thread with this id") }
        guard !state.isDestroyed else { throw DomainError(.threadDestroyed, "thread \(state.id) is destroyed") }
        return state
    }

    private static func requireAdministrator(_ actor: AccountID, in state: ThreadState) throws(DomainError) {
        guard state.isAdministrator(actor) else {
            throw DomainError(.notAdministrator, "account \(actor) is not an administrator of thread \(state.id)")
        }
    }

    /// Anyone may take themselves out; taking out others needs an administrator.
    private static func requireAdministratorOrSelf(_ actor: AccountID, leaving accountIds: [AccountID], in state: ThreadState) throws(DomainError) {
        if accountIds.removingDuplicates() == [actor] { return }
        try requireAdministrator(actor, in: state)
    }

    private static func validateAccountIds(_ accountIds: [AccountID], field: String, allowEmpty: Bool) throws(DomainError) {
        guard accountIds.count <= InputLimits.accountIds.upperBound, allowEmpty || !accountIds.isEmpty else {
            throw DomainError(.invalidRequest, "\(field) must hold \(allowEmpty ? 0 : 1)–\(InputLimits.accountIds.upperBound) ids, got \(accountIds.count)")
        }
    }

    /// `candidates` not already in `existing`, folded, in request order.
    private static func newIds(_ candidates: [AccountID], notIn existing: [AccountID]) -> [AccountID] {
        let existing = Set(existing)
        return candidates.removingDuplicates().filter { !existing.contains($0) }
    }

    /// `candidates` that are in `existing`, folded, in request order.
    private static func presentIds(_ candidates: [AccountID], in existing: [AccountID]) -> [AccountID] {
        let existing = Set(existing)
        return candidates.removingDuplicates().filter(existing.contains)
    }

    /// No change, no event: the command succeeds with the unchanged version.
    private static func nonEmpty(_ ids: [AccountID], _ event: ([AccountID]) -> ThreadEvent) -> [ThreadEvent] {
        ids.isEmpty ? [] : [event(ids)]
    }
}
