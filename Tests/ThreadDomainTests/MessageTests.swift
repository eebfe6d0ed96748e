import Testing
import ThreadDomain

/// bob sent message1, carol sent message2, and message3 (carol's) was removed.
let threadWithMessages = given([
    threadCreated,
    .messagesAdded([
        AddedMessage(id: message1, senderId: bob, text: "first"),
        AddedMessage(id: message2, senderId: carol, text: "second", replyTo: message1),
        AddedMessage(id: message3, senderId: carol, text: "third"),
    ]),
    .messagesRemoved([message3]),
])

@Suite struct AddMessagesTests {
    let state = threadWithMessages
    let newId = ulid(2001)

    @Test func aMemberAddsAMessage() {
        expect(state, .addMessages([NewMessage(id: newId, text: "  hello\n", replyTo: message1, mentions: [bob, alice, bob, carol])]), actor: carol, events: [
            .messagesAdded([AddedMessage(id: newId, senderId: carol, text: "hello", replyTo: message1, mentions: [bob, alice, carol])]),
        ])
    }

    @Test func anAdministratorAddsMessagesInOrder() {
        expect(state, .addMessages([NewMessage(id: ulid(2002), text: "b"), NewMessage(id: newId, text: "a")]), actor: alice, events: [
            .messagesAdded([AddedMessage(id: ulid(2002), senderId: alice, text: "b"), AddedMessage(id: newId, senderId: alice, text: "a")]),
        ])
    }

    @Test func anOutsiderMayNotAdd() {
        let error = expectError(state, .addMessages([NewMessage(id: newId, text: "hi")]), actor: dave, code: .notParticipant)
        #expect(error?.message.contains(dave.rawValue) == true)
    }

    @Test func aFormerMemberMayNotAdd() {
        let left = given([threadCreated, .memberIdsLeft([carol])])
        expectError(left, .addMessages([NewMessage(id: newId, text: "hi")]), actor: carol, code: .notParticipant)
    }

    @Test func aCommandHolds1To100Messages() throws {
        expectError(state, .addMessages([]), actor: alice, code: .invalidRequest)
        let hundred = (0..<100).map { NewMessage(id: ulid(3000 + $0), text: "m\($0)") }
        let events = try ThreadDecider.decide(state, .addMessages(hundred), actor: alice)
        guard case .messagesAdded(let added) = events.first else { Issue.record("no MessagesAdded"); return }
        #expect(added.map(\.id) == hundred.map(\.id))
        expectError(state, .addMessages(hundred + [NewMessage(id: newId, text: "one too many")]), actor: alice, code: .invalidRequest)
    }

    @Test(arguments: ["", " ", "\n\t  \r\n"])
    func refusesEmptyText(_ text: String) {
        let error = expectError(state, .addMessages([NewMessage(id: newId, text: text)]), actor: alice, code: .invalidRequest)
        #expect(error?.message.contains(newId.rawValue) == true)
    }

    @Test func textLimitIs4000CharactersAfterTrimming() {
        let longest = String(repeating: "x", count: 4000)
        expect(state, .addMessages([NewMessage(id: newId, text: "\n " + longest + " \n")]), actor: alice, events: [
            .messagesAdded([AddedMessage(id: newId, senderId: alice, text: longest)]),
        ])
        expectError(state, .addMessages([NewMessage(id: newId, text: longest + "x")]), actor: alice, code: .invalidRequest)
    }

    @Test func textIsCappedAt16KiBOfUTF8() throws {
        let longest = String(repeating: "😀", count: 4000)  // 16,000 bytes: within both limits
        expect(state, .addMessages([NewMessage(id: newId, text: longest)]), actor: alice, events: [
            .messagesAdded([AddedMessage(id: newId, senderId: alice, text: longest)]),
        ])
        let oneCharacter = "a" + String(repeating: "\u{0301}", count: 300_000)
        let error = expectError(state, .addMessages([NewMessage(id: newId, text: oneCharacter)]), actor: alice, code: .invalidRequest)
        #expect(error?.message == "text of message \(newId) must be at most 16384 bytes of UTF-8 after trimming, got 600001")
        let justOver = "a" + String(repeating: "\u{0301}", count: 8192)  // 16,385 bytes
        expectError(state, .addMessages([NewMessage(id: newId, text: justOver)]), actor: alice, code: .invalidRequest)
    }

    @Test func oneBadMessageRefusesTheWholeCommand() {
        expectError(state, .addMessages([NewMessage(id: newId, text: "fine"), NewMessage(id: ulid(2002), text: " ")]), actor: alice, code: .invalidRequest)
    }

    @Test func replyingToARemovedMessageIsNotFound() {
        let error = expectError(state, .addMessages([NewMessage(id: newId, text: "re", replyTo: message3)]), actor: alice, code: .messageNotFound)
        #expect(error?.message.contains(message3.rawValue) == true)
    }

    @Test func replyingToAnUnknownMessageIsNotFound() {
        expectError(state, .addMessages([NewMessage(id: newId, text: "re", replyTo: ulid(9999))]), actor: alice, code: .messageNotFound)
    }

    @Test func aReplyMayTargetAnEarlierMessageOfTheSameCommand() {
        let reply = ulid(2002)
        expect(state, .addMessages([NewMessage(id: newId, text: "q"), NewMessage(id: reply, text: "a", replyTo: newId)]), actor: alice, events: [
            .messagesAdded([AddedMessage(id: newId, senderId: alice, text: "q"), AddedMessage(id: reply, senderId: alice, text: "a", replyTo: newId)]),
        ])
    }

    @Test func aReplyCannotTargetALaterMessageOrItself() {
        let reply = ulid(2002)
        expectError(state, .addMessages([NewMessage(id: reply, text: "a", replyTo: newId), NewMessage(id: newId, text: "q")]), actor: alice, code: .messageNotFound)
        expectError(state, .addMessages([NewMessage(id: newId, text: "me", replyTo: newId)]), actor: alice, code: .messageNotFound)
    }

    @Test func mentionsMustBeParticipants() {
        let error = expectError(state, .addMessages([NewMessage(id: newId, text: "hey", mentions: [bob, dave])]), actor: alice, code: .invalidRequest)
        #expect(error?.message.contains(dave.rawValue) == true)
    }

    @Test func mentionsHoldAtMost1000Ids() {
        expectError(state, .addMessages([NewMessage(id: newId, text: "all", mentions: accountIds(1001))]), actor: alice, code: .invalidRequest)
    }

    @Test(arguments: [message1, message3])
    func anIdAlreadyUsedInTheThreadExists(_ existing: MessageID) {
        let error = expectError(state, .addMessages([NewMessage(id: existing, text: "again")]), actor: alice, code: .messageExists)
        #expect(error?.message.contains(existing.rawValue) == true)
    }

    @Test func anIdRepeatedWithinTheCommandIsInvalid() {
        expectError(state, .addMessages([NewMessage(id: newId, text: "a"), NewMessage(id: newId, text: "b")]), actor: alice, code: .invalidRequest)
    }

    @Test func decidesFromTheReferencedSubsetTheStoreLoads() throws {
        // The store loads only referencedMessageIds from its index; that must be enough.
        var partial = try #require(threadWithMessages)
        let command = ThreadCommand.addMessages([NewMessage(id: newId, text: "re", replyTo: message2)])
        partial.messages = partial.messages.filter { command.referencedMessageIds.contains($0.key) }
        #expect(partial.messages.keys.sorted() == [message2])
        expect(partial, command, actor: alice, events: [.messagesAdded([AddedMessage(id: newId, senderId: alice, text: "re", replyTo: message2)])])
    }
}

@Suite struct RemoveMessagesTests {
    let state = threadWithMessages

    @Test func theSenderRemovesTheirMessage() {
        expect(state, .removeMessages([message2]), actor: carol, events: [.messagesRemoved([message2])])
    }

    @Test func anAdministratorRemovesAnyonesMessage() {
        expect(state, .removeMessages([message2, message1]), actor: alice, events: [.messagesRemoved([message2, message1])])
    }

    @Test func repeatedIdsAreFolded() {
        expect(state, .removeMessages([message2, message2]), actor: carol, events: [.messagesRemoved([message2])])
    }

    @Test func aMemberCannotRemoveSomeoneElsesMessage() {
        let error = expectError(state, .removeMessages([message2, message1]), actor: carol, code: .notSender)
        #expect(error?.message.contains(message1.rawValue) == true)
    }

    @Test func aSenderWhoLeftMayStillRemoveTheirMessage() {
        let left = ThreadDecider.replay(
            [RecordedEvent(version: 4, at: 2_000, actor: carol, commandId: "leave", event: .memberIdsLeft([carol]))],
            from: threadWithMessages
        )
        expect(left, .removeMessages([message2]), actor: carol, events: [.messagesRemoved([message2])])
    }

    @Test func anUnknownMessageIsNotFound() {
        let error = expectError(state, .removeMessages([message1, ulid(9999)]), actor: alice, code: .messageNotFound)
        #expect(error?.message.contains(ulid(9999).rawValue) == true)
    }

    @Test func anAlreadyRemovedMessageIsNotFound() {
        expectError(state, .removeMessages([message3]), actor: alice, code: .messageNotFound)
        expectError(state, .removeMessages([message3]), actor: carol, code: .messageNotFound)
    }

    @Test func aCommandHolds1To100Ids() {
        expectError(state, .removeMessages([]), actor: alice, code: .invalidRequest)
        expectError(state, .removeMessages(Array(repeating: message1, count: 101)), actor: alice, code: .invalidRequest)
        expect(state, .removeMessages(Array(repeating: message1, count: 100)), actor: alice, events: [.messagesRemoved([message1])])
    }
}
