import EventStore
import StoreTestSupport
import Testing
import ThreadDomain

/// One suite, every store: the Redis store and the in-memory one must agree.
@Suite("Event store contract")
struct EventStoreContractTests {
    @Test("append to a new thread numbers events from 1", arguments: StoreKind.allCases)
    func appendNumbersFromOne(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            let threadId = ThreadID.generate()
            let outcome = try await store.append(
                appendRequest(threadId, expected: 0, [createThread(threadId), .messagesAdded([message()])]))
            #expect(outcome == .appended(version: 2))
            let events = try await store.events(of: threadId, after: 0, limit: 100)
            #expect(events.map(\.version) == [1, 2])
            #expect(events.first?.event == createThread(threadId))
            #expect(events.allSatisfy { $0.at == 1_700_000_000_000 && $0.actor == alice })
        }
    }

    @Test("a stale expected version is refused with the actual version", arguments: StoreKind.allCases)
    func staleAppendConflicts(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            let threadId = ThreadID.generate()
            _ = try await store.append(appendRequest(threadId, expected: 0, [createThread(threadId)]))
            _ = try await store.append(appendRequest(threadId, expected: 1, [.messagesAdded([message()])]))
            let stale = try await store.append(appendRequest(threadId, expected: 1, [.messagesAdded([message()])]))
            #expect(stale == .conflict(actualVersion: 2))
            let recreate = try await store.append(appendRequest(threadId, expected: 0, [createThread(threadId)]))
            #expect(recreate == .conflict(actualVersion: 2))
            #expect(try await store.events(of: threadId, after: 0, limit: 10).count == 2)
        }
    }

    @Test("an append sent again after a lost reply answers as the first time and appends nothing", arguments: StoreKind.allCases)
    func appendSentAgain(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            let threadId = ThreadID.generate()
            _ = try await store.append(appendRequest(threadId, expected: 0, [createThread(threadId)]))
            let request = appendRequest(threadId, expected: 1, [.messagesAdded([message()]), .messagesAdded([message()])])
            #expect(try await store.append(request) == .appended(version: 3))
            #expect(try await store.append(request) == .appended(version: 3))
            // Another command at the same expected version still conflicts, also once the thread moved on.
            let other = appendRequest(threadId, expected: 1, [.messagesAdded([message()])])
            #expect(try await store.append(other) == .conflict(actualVersion: 3))
            _ = try await store.append(appendRequest(threadId, expected: 3, [.messagesAdded([message()])]))
            #expect(try await store.append(request) == .appended(version: 3))
            #expect(try await store.append(other) == .conflict(actualVersion: 4))
            #expect(try await store.events(of: threadId, after: 0, limit: 10).map(\.version) == [1, 2, 3, 4])
        }
    }

    /// Messages commute: posts decided at an older version land after later
    /// posts, and only after posts.
    @Test("an append of messages that may follow messages lands after later messages, and after nothing else", arguments: StoreKind.allCases)
    func messagesFollowMessages(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            let threadId = ThreadID.generate()
            func post(expected: Int64, _ added: AddedMessage = message(), follows: Bool = true) -> AppendRequest {
                var request = appendRequest(threadId, expected: expected, [.messagesAdded([added])])
                request.mayFollowMessages = follows
                return request
            }
            _ = try await store.append(appendRequest(threadId, expected: 0, [createThread(threadId)]))
            _ = try await store.append(post(expected: 1))
            #expect(try await store.append(post(expected: 1, follows: false)) == .conflict(actualVersion: 2))
            let late = post(expected: 1)
            #expect(try await store.append(late) == .appended(version: 3))
            #expect(try await store.append(late) == .appended(version: 3), "sent again after a lost reply: in once")
            let landed = try await store.events(of: threadId, after: 2, limit: 10)
            #expect(landed.map(\.version) == [3])
            #expect(landed.map(\.commandId) == late.commands.map(\.commandId))

            // A message id taken meanwhile: the decision no longer holds.
            let taken = message()
            _ = try await store.append(post(expected: 3, taken))
            #expect(try await store.append(post(expected: 3, taken)) == .conflict(actualVersion: 4))
            // At the expected version too: a post decided without loading the message index is checked here.
            #expect(try await store.append(post(expected: 4, taken)) == .conflict(actualVersion: 4))
            // Anything but messages after the expected version: a conflict as before.
            _ = try await store.append(appendRequest(threadId, expected: 4, [.memberIdsJoined([.generate()])]))
            #expect(try await store.append(post(expected: 4)) == .conflict(actualVersion: 5))
            // Something else than messages never follows.
            var join = appendRequest(threadId, expected: 4, [.memberIdsJoined([.generate()])])
            join.mayFollowMessages = true
            #expect(try await store.append(join) == .conflict(actualVersion: 5))
            #expect(try await store.events(of: threadId, after: 0, limit: 10).map(\.version) == [1, 2, 3, 4, 5])
        }
    }

    @Test("an append of messages follows at most rebaseLimit later messages", arguments: StoreKind.allCases)
    func messagesFollowABoundedGap(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            let threadId = ThreadID.generate()
            _ = try await store.append(appendRequest(threadId, expected: 0, [createThread(threadId)]))
            let limit = Int64(AppendRequest.rebaseLimit)
            for version in 1...limit {
                _ = try await store.append(appendRequest(threadId, expected: version, [.messagesAdded([message()])]))
            }
            var atTheLimit = appendRequest(threadId, expected: 1, [.messagesAdded([message()])])
            atTheLimit.mayFollowMessages = true
            #expect(try await store.append(atTheLimit) == .appended(version: limit + 2))
            var pastIt = appendRequest(threadId, expected: 1, [.messagesAdded([message()])])
            pastIt.mayFollowMessages = true
            #expect(try await store.append(pastIt) == .conflict(actualVersion: limit + 2))
        }
    }

    @Test("a retried idempotency key appends nothing and returns the first outcome", arguments: StoreKind.allCases)
    func idempotentRetry(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            let threadId = ThreadID.generate()
            let key = "retry-\(ULID.generate())"
            let idempotency = AppendRequest.Idempotency(fingerprint: "f1", result: #"{"messageIds":["x"]}"#)
            let first = try await store.append(
                appendRequest(threadId, expected: 0, [createThread(threadId)], commandId: key, idempotency: idempotency))
            #expect(first == .appended(version: 1))
            // The same command decided again (on a newer version): the record answers.
            let retry = try await store.append(
                appendRequest(threadId, expected: 1, [.threadDestroyed], commandId: key, idempotency: idempotency))
            #expect(retry == .duplicate(IdempotencyRecord(version: 1, result: #"{"messageIds":["x"]}"#, fingerprint: "f1")))
            let loaded = try await store.load(threadId, since: nil, messageIds: [], commandId: key)
            #expect(loaded.previousOutcome?.version == 1)
            #expect(try await store.events(of: threadId, after: 0, limit: 10).count == 1)

            let other = AppendRequest.Idempotency(fingerprint: "f2", result: "")
            let reused = try await store.append(
                appendRequest(threadId, expected: 1, [.threadDestroyed], commandId: key, idempotency: other))
            #expect(reused == .reused(command: 0))
            #expect(try await store.events(of: threadId, after: 0, limit: 10).count == 1)
        }
    }

    @Test("one append of several commands: consecutive versions, each command its own id, actor and record", arguments: StoreKind.allCases)
    func appendOfSeveralCommands(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            let threadId = ThreadID.generate()
            _ = try await store.append(appendRequest(threadId, expected: 0, [createThread(threadId)]))
            let first = message(from: alice), second = message(from: bob), reply = message(from: alice, replyTo: first.id)
            let request = AppendRequest(
                threadId: threadId, expectedVersion: 1,
                commands: [
                    .init(commandId: "k-a-\(threadId)", actor: alice, events: [.messagesAdded([first])],
                          idempotency: .init(fingerprint: "fa", result: "ra")),
                    .init(commandId: "plain-\(threadId)", actor: bob, events: [.messagesAdded([second]), .messagesRemoved([second.id])],
                          idempotency: nil),
                    .init(commandId: "k-c-\(threadId)", actor: alice, events: [.messagesAdded([reply])],
                          idempotency: .init(fingerprint: "fc", result: "rc")),
                ],
                at: 1_700_000_000_000)
            #expect(try await store.append(request) == .appended(version: 5))
            #expect(try await store.append(request) == .appended(version: 5), "sent again after a lost reply")
            let events = try await store.events(of: threadId, after: 1, limit: 10)
            #expect(events.map(\.version) == [2, 3, 4, 5])
            #expect(events.map(\.commandId) == ["k-a-\(threadId)", "plain-\(threadId)", "plain-\(threadId)", "k-c-\(threadId)"])
            #expect(events.map(\.actor) == [alice, bob, bob, alice])
            #expect(try await store.load(threadId, since: nil, messageIds: [], commandId: "k-a-\(threadId)").previousOutcome
                == IdempotencyRecord(version: 2, result: "ra", fingerprint: "fa"))
            #expect(try await store.load(threadId, since: nil, messageIds: [], commandId: "k-c-\(threadId)").previousOutcome
                == IdempotencyRecord(version: 5, result: "rc", fingerprint: "fc"))
            let loaded = try await store.load(threadId, since: nil, messageIds: [second.id, reply.id], commandId: nil)
            #expect(loaded.state?.messages[second.id]?.removed == true)
            #expect(loaded.state?.messages[reply.id]?.replyTo == first.id)

            // A command of a later append whose key is in already: named, and nothing of the append written.
            let again = AppendRequest(
                threadId: threadId, expectedVersion: 5,
                commands: [
                    .init(commandId: "new-\(threadId)", actor: bob, events: [.messagesAdded([message(from: bob)])], idempotency: nil),
                    .init(commandId: "k-c-\(threadId)", actor: alice, events: [.messagesAdded([message(from: alice)])],
                          idempotency: .init(fingerprint: "fc", result: "rc")),
                    .init(commandId: "k-a-\(threadId)", actor: alice, events: [.messagesAdded([message(from: alice)])],
                          idempotency: .init(fingerprint: "other", result: "")),
                ],
                at: 1_700_000_000_001)
            #expect(try await store.append(again) == .duplicate(IdempotencyRecord(version: 5, result: "rc", fingerprint: "fc"), command: 1))
            var reusedOnly = again
            reusedOnly.commands.remove(at: 1)
            #expect(try await store.append(reusedOnly) == .reused(command: 1))
            #expect(try await store.events(of: threadId, after: 0, limit: 10).count == 5)
        }
    }

    @Test("load replays events and merges the message records a command names", arguments: StoreKind.allCases)
    func loadWithMessageIndex(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            let threadId = ThreadID.generate()
            let kept = message(from: bob)
            let removed = message()
            _ = try await store.append(
                appendRequest(threadId, expected: 0, [createThread(threadId), .messagesAdded([kept, removed])]))
            _ = try await store.append(appendRequest(threadId, expected: 2, [.messagesRemoved([removed.id])]))

            let unknown = MessageID.generate()
            let loaded = try await store.load(threadId, since: nil, messageIds: [kept.id, removed.id, unknown], commandId: nil)
            let state = try #require(loaded.state)
            #expect(state.version == 3)
            #expect(state.memberIds == [bob])
            #expect(state.messages[kept.id] == MessageRecord(senderId: bob, replyTo: nil, removed: false))
            #expect(state.messages[removed.id]?.removed == true)
            #expect(state.messages[unknown] == nil)
            #expect(loaded.previousOutcome == nil)
        }
    }

    @Test("loading since a known state reads only what was missed", arguments: StoreKind.allCases)
    func incrementalLoad(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            let threadId = ThreadID.generate()
            _ = try await store.append(appendRequest(threadId, expected: 0, [createThread(threadId)]))
            let first = try await store.load(threadId, since: nil, messageIds: [], commandId: nil)
            _ = try await store.append(appendRequest(threadId, expected: 1, [.memberIdsJoined([alice])]))
            let second = try await store.load(threadId, since: first.state, messageIds: [], commandId: nil)
            #expect(second.eventsReplayed == 1)
            #expect(second.state?.version == 2)
            #expect(second.state?.memberIds == [bob, alice])
        }
    }

    @Test("a snapshot sent with an append, plus the later events, equals a full replay", arguments: StoreKind.allCases)
    func snapshotThenEvents(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            let threadId = ThreadID.generate()
            _ = try await store.append(appendRequest(threadId, expected: 0, [createThread(threadId)]))
            for version in Int64(1)...4 {
                _ = try await store.append(appendRequest(threadId, expected: version, [.messagesAdded([message()])]))
            }
            let before = try #require(try await store.load(threadId, since: nil, messageIds: [], commandId: nil).state)
            let post = message()
            var withSnapshot = appendRequest(threadId, expected: 5, [.messagesAdded([post])])
            withSnapshot.snapshot = ThreadDecider.evolve(before, withSnapshot.recordedEvents(after: 5)[0])
            #expect(try await store.append(withSnapshot) == .appended(version: 6))
            _ = try await store.append(appendRequest(threadId, expected: 6, [.administratorIdsJoined([bob])]))

            let loaded = try await store.load(threadId, since: nil, messageIds: [], commandId: nil)
            #expect(loaded.eventsReplayed == 1, "the load starts from the snapshot at version 6")
            var expected = try #require(ThreadDecider.replay(try await store.events(of: threadId, after: 0, limit: 100)))
            expected.messages = [:]
            #expect(loaded.state == expected, "the snapshot keeps no messages")

            // Sent again after a lost reply, the append answers as before and leaves the snapshot as it is.
            #expect(try await store.append(withSnapshot) == .appended(version: 6))
            #expect(try await store.load(threadId, since: nil, messageIds: [], commandId: nil).eventsReplayed == 1)
        }
    }

    @Test("an append keeps its snapshot only where it was decided", arguments: StoreKind.allCases)
    func snapshotOnlyWhereDecided(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            let threadId = ThreadID.generate()
            _ = try await store.append(appendRequest(threadId, expected: 0, [createThread(threadId)]))
            let created = try #require(try await store.load(threadId, since: nil, messageIds: [], commandId: nil).state)
            // Another writer's post goes in first: this one lands after it, at version 3, not where it was decided.
            _ = try await store.append(appendRequest(threadId, expected: 1, [.messagesAdded([message()])]))
            var late = appendRequest(threadId, expected: 1, [.messagesAdded([message()])])
            late.mayFollowMessages = true
            late.snapshot = ThreadDecider.evolve(created, late.recordedEvents(after: 1)[0])
            #expect(try await store.append(late) == .appended(version: 3))
            #expect(try await store.load(threadId, since: nil, messageIds: [], commandId: nil).eventsReplayed == 3, "no snapshot")

            // A conflict writes nothing, the snapshot neither.
            var stale = appendRequest(threadId, expected: 1, [.memberIdsJoined([alice])])
            stale.snapshot = ThreadDecider.evolve(created, stale.recordedEvents(after: 1)[0])
            #expect(try await store.append(stale) == .conflict(actualVersion: 3))
            #expect(try await store.load(threadId, since: nil, messageIds: [], commandId: nil).eventsReplayed == 3, "no snapshot")
        }
    }

    @Test("events(after:limit:) pages the stream", arguments: StoreKind.allCases)
    func pagingEvents(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            let threadId = ThreadID.generate()
            _ = try await store.append(
                appendRequest(threadId, expected: 0, [createThread(threadId)] + (0..<4).map { _ in .messagesAdded([message()]) }))
            #expect(try await store.events(of: threadId, after: 1, limit: 2).map(\.version) == [2, 3])
            #expect(try await store.events(of: threadId, after: 5, limit: 2).isEmpty)
            #expect(try await store.events(of: .generate(), after: 0, limit: 2).isEmpty)
        }
    }
}
