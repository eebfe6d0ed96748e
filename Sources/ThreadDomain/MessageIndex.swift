extension ThreadEvent {
    /// The write-side message-index entries this event sets (messageId → record),
    /// so the store can keep its index in step with the stream. `MessagesRemoved`
    /// marks the records in `existing` removed, keeping their sender and reply
    /// target; ids missing from `existing` are left out. Other events change nothing.
    public func messageIndexUpdates(existing: [MessageID: MessageRecord]) -> [MessageID: MessageRecord] {
        switch self {
        case .messagesAdded(let messages):
            return Dictionary(
                messages.map { ($0.id, MessageRecord(senderId: $0.senderId, replyTo: $0.replyTo, removed: false)) },
                uniquingKeysWith: { $1 }
            )
        case .messagesRemoved(let messageIds):
            var updates: [MessageID: MessageRecord] = [:]
            for messageId in messageIds {
                guard var record = existing[messageId] else { continue }
                record.removed = true
                updates[messageId] = record
            }
            return updates
        case .threadCreated, .threadDestroyed, .administratorIdsJoined, .administratorIdsLeft, .memberIdsJoined, .memberIdsLeft:
            return [:]
        }
    }
}
