import Foundation
import Testing
import ThreadDomain

@Suite struct EvolveTests {
    @Test func threadCreatedBuildsTheState() throws {
        let state = try #require(ThreadDecider.evolve(nil, RecordedEvent(
            version: 1, at: 5_000, actor: alice, commandId: "c1",
            event: .threadCreated(ThreadCreated(
                threadId: threadId, creatorId: alice, parentThreadId: ulid(99), title: "T", remarks: "R",
                administratorIds: [alice, bob], memberIds: [carol]
            ))
        )))
        #expect(state == ThreadState(
            id: threadId, creatorId: alice, parentThreadId: ulid(99), title: "T", remarks: "R",
            administratorIds: [alice, bob], memberIds: [carol], createdAt: 5_000, updatedAt: 5_000, version: 1
        ))
        #expect(!state.isDestroyed)
    }

    @Test func everyEventSetsVersionAndUpdatedAtFromTheEnvelope() throws {
        let created = try #require(given([threadCreated]))
        let joined = try #require(ThreadDecider.evolve(created, RecordedEvent(version: 2, at: 9_000, actor: alice, commandId: "c2", event: .memberIdsJoined([dave]))))
        #expect(joined.version == 2)
        #expect(joined.updatedAt == 9_000)
        #expect(joined.createdAt == 1_000)
        #expect(joined.memberIds == [carol, dave])
    }

    @Test func threadDestroyedRecordsWhen() throws {
        let state = try #require(given([threadCreated, .threadDestroyed]))
        #expect(state.isDestroyed)
        #expect(state.destroyedAt == 1_001)
        #expect(state.version == 2)
    }

    @Test func membershipEventsKeepJoinOrderWithoutDuplicates() throws {
        let state = try #require(given([
            threadCreated,
            .administratorIdsJoined([dave, erin]),
            .administratorIdsLeft([bob]),
            .administratorIdsJoined([bob]),
            .memberIdsJoined([erin]),
            .memberIdsLeft([carol]),
        ]))
        #expect(state.administratorIds == [alice, dave, erin, bob])
        #expect(state.memberIds == [erin])
        #expect(state.isParticipant(dave) && state.isParticipant(erin) && !state.isParticipant(carol))
        #expect(state.version == 6)
    }

    @Test func messageEventsMaintainTheMessageRecords() throws {
        let state = try #require(threadWithMessages)
        #expect(state.messages == [
            message1: MessageRecord(senderId: bob),
            message2: MessageRecord(senderId: carol, replyTo: message1),
            message3: MessageRecord(senderId: carol, removed: true),
        ])
        #expect(state.isLiveMessage(message1) && !state.isLiveMessage(message3) && !state.isLiveMessage(ulid(9999)))
    }

    @Test func eventsBeforeCreationLeaveNoState() {
        #expect(given([.memberIdsJoined([dave])]) == nil)
    }

    @Test func replayFromASnapshotEqualsAFullReplay() throws {
        let events: [ThreadEvent] = [threadCreated, .memberIdsJoined([dave]), .messagesAdded([AddedMessage(id: message1, senderId: dave, text: "x")]), .messagesRemoved([message1])]
        let recorded = events.enumerated().map { RecordedEvent(version: Int64($0 + 1), at: Int64($0) * 10, actor: alice, commandId: "c\($0)", event: $1) }
        let snapshot = ThreadDecider.replay(recorded.prefix(2))
        #expect(snapshot?.version == 2)
        #expect(ThreadDecider.replay(recorded.dropFirst(2), from: snapshot) == ThreadDecider.replay(recorded))
    }

    @Test func decideThenEvolveAppliesTheDecision() throws {
        let state = try #require(given([threadCreated]))
        let events = try ThreadDecider.decide(state, .joinAdministrators([carol]), actor: alice)
        let next = ThreadDecider.replay(events.map { RecordedEvent(version: 2, at: 2_000, actor: alice, commandId: "c", event: $0) }, from: state)
        #expect(next?.isAdministrator(carol) == true)
        #expect(next?.isMember(carol) == true)
    }
}

@Suite struct SnapshotCodingTests {
    @Test func threadStateRoundTripsThroughJSON() throws {
        var state = try #require(threadWithMessages)
        state.parentThreadId = ulid(99)
        state.destroyedAt = 7_000
        let data = try JSONEncoder().encode(state)
        #expect(try JSONDecoder().decode(ThreadState.self, from: data) == state)
    }

    @Test func snapshotJSONKeysMessagesByIdAndOmitsAbsentOptionals() throws {
        let state = try #require(given([threadCreated, .messagesAdded([AddedMessage(id: message1, senderId: bob, text: "x")])]))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = String(decoding: try encoder.encode(state), as: UTF8.self)
        #expect(json.contains(#""messages":{"00000000000000000000001001":{"removed":false,"senderId":"00000000000000000000000002"}}"#), "\(json)")
        #expect(!json.contains("remarks") && !json.contains("destroyedAt") && !json.contains("parentThreadId") && !json.contains("replyTo"))
    }
}

@Suite struct MessageIndexTests {
    @Test func addedMessagesBecomeLiveRecords() {
        let updates = ThreadEvent.messagesAdded([
            AddedMessage(id: message1, senderId: bob, text: "a"),
            AddedMessage(id: message2, senderId: carol, text: "b", replyTo: message1),
        ]).messageIndexUpdates(existing: [:])
        #expect(updates == [message1: MessageRecord(senderId: bob), message2: MessageRecord(senderId: carol, replyTo: message1)])
    }

    @Test func removedMessagesKeepSenderAndReplyTarget() {
        let existing = [message2: MessageRecord(senderId: carol, replyTo: message1)]
        let updates = ThreadEvent.messagesRemoved([message2, ulid(9999)]).messageIndexUpdates(existing: existing)
        #expect(updates == [message2: MessageRecord(senderId: carol, replyTo: message1, removed: true)])
    }

    @Test(arguments: [threadCreated, .threadDestroyed, .administratorIdsJoined([dave]), .memberIdsLeft([carol])])
    func otherEventsChangeNoRecords(_ event: ThreadEvent) {
        #expect(event.messageIndexUpdates(existing: [message1: MessageRecord(senderId: bob)]).isEmpty)
    }
}

@Suite struct CommandTests {
    @Test func referencedMessageIdsAreNewIdsReplyTargetsAndRemovals() {
        let add = ThreadCommand.addMessages([
            NewMessage(id: ulid(2001), text: "a", replyTo: message1),
            NewMessage(id: ulid(2002), text: "b", replyTo: ulid(2001)),
            NewMessage(id: ulid(2003), text: "c", replyTo: message1),
        ])
        #expect(add.referencedMessageIds == [ulid(2001), message1, ulid(2002), ulid(2003)])
        #expect(ThreadCommand.removeMessages([message2, message1, message2]).referencedMessageIds == [message2, message1])
        #expect(ThreadCommand.joinMembers([dave]).referencedMessageIds.isEmpty)
        #expect(ThreadCommand.destroyThread.referencedMessageIds.isEmpty)
    }

    @Test func namesAreTheFunctionNames() {
        let commands: [ThreadCommand] = [
            .createThread(CreateThread(threadId: threadId, creatorId: alice, title: "t")), .destroyThread,
            .joinAdministrators([]), .leaveAdministrators([]), .joinMembers([]), .leaveMembers([]),
            .addMessages([]), .removeMessages([]),
        ]
        #expect(commands.map(\.name) == [
            "create-thread", "destroy-thread", "join-administrators", "leave-administrators",
            "join-members", "leave-members", "add-messages", "remove-messages",
        ])
    }

    @Test func domainErrorsDescribeThemselvesByCode() {
        let error = DomainError(.notSender, "account X did not send message Y")
        #expect(error.description == "not_sender: account X did not send message Y")
        #expect(error == DomainError(code: DomainError.Code(rawValue: "not_sender")!, message: "account X did not send message Y"))
        #expect([DomainError.Code.invalidRequest, .threadExists, .threadNotFound, .threadDestroyed, .notAdministrator, .notParticipant,
                 .lastAdministrator, .messageNotFound, .messageExists, .notSender].map(\.rawValue) == [
            "invalid_request", "thread_exists", "thread_not_found", "thread_destroyed", "not_administrator", "not_participant",
            "last_administrator", "message_not_found", "message_exists", "not_sender",
        ])
    }
}
