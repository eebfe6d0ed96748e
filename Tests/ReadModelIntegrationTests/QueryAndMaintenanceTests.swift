import EventStore
import Foundation
import ReadModel
import RedisClient
import Testing
import ThreadDomain
import ThreadFunctions

@Suite("Reader, watch and maintenance", .timeLimit(.minutes(2)))
struct QueryAndMaintenanceTests {
    let alice = ULID.generate()
    let bob = ULID.generate()

    func runner(_ fixture: Fixture) -> CommandRunner { CommandRunner(store: fixture.store, logger: testLogger) }

    @discardableResult
    func run(_ command: ThreadCommand, on threadId: ThreadID, as actor: AccountID, _ fixture: Fixture) async throws -> CommandOutcome {
        try await runner(fixture).run(CommandRequest(threadId: threadId, command: command, actor: actor))
    }

    func project(_ fixture: Fixture) async throws {
        for entry in try await changeLogEntries(fixture) {
            _ = try await fixture.projector.apply([entry.event], of: entry.threadId)
        }
    }

    /// Chat history is kept forever: a message is kept without its id (its
    /// hash field) and without empty mentions, and read back whole, as are
    /// messages kept whole by library version 5.
    @Test func messagesAreKeptWithoutTheirIdOrEmptyMentionsAndReadWhole() async throws {
        try await withFixture { fixture in
            let threadId = ULID.generate()
            try await run(.createThread(CreateThread(threadId: threadId, creatorId: alice, title: "t", memberIds: [bob])), on: threadId, as: alice, fixture)
            let plain = NewMessage(id: .generate(), text: #"quoted "mentions": [] text"#)
            let mentioning = NewMessage(id: .generate(), text: "hi", mentions: [bob])
            let reply = NewMessage(id: .generate(), text: "re", replyTo: plain.id)
            let added = try await run(.addMessages([plain, mentioning, reply]), on: threadId, as: alice, fixture)
            try await project(fixture)
            let at = try #require(added.events.first?.at)
            let kept = try await fixture.send("HGET", fixture.layout.messagesView(threadId), plain.id.rawValue).string
            #expect(kept == #"{"senderId":"\#(alice)","text":"quoted \"mentions\": [] text","createdAt":\#(at)}"#)

            let legacy = MessageID.generate()
            _ = try await fixture.send(
                "HSET", fixture.layout.messagesView(threadId), legacy.rawValue,
                #"{"id":"\#(legacy)","senderId":"\#(bob)","text":"old","mentions":[],"createdAt":1}"#)
            _ = try await fixture.send("ZADD", fixture.layout.timelineView(threadId), "999999", legacy.rawValue)
            let page = try await fixture.reader.messages(of: threadId, after: nil, limit: 10)
            #expect(page.messages.map(\.id) == [plain.id, mentioning.id, reply.id, legacy])
            #expect(page.messages.map(\.senderId) == [alice, alice, alice, bob])
            #expect(page.messages.map(\.text) == [plain.text, "hi", "re", "old"])
            #expect(page.messages.map(\.replyTo) == [nil, nil, plain.id, nil])
            #expect(page.messages.map(\.mentions) == [[], [bob], [], []])
            #expect(page.messages.map(\.createdAt) == [at, at, at, 1])
        }
    }

    @Test func pagesMessagesInTimelineOrderWithoutRemovedOnes() async throws {
        try await withFixture { fixture in
            let threadId = ULID.generate()
            try await run(.createThread(CreateThread(threadId: threadId, creatorId: alice, title: "t", memberIds: [bob])), on: threadId, as: alice, fixture)
            var ids: [MessageID] = []
            for batch in 0..<5 {
                let messages = (0..<3).map { NewMessage(id: .generate(), text: "b\(batch) m\($0)") }
                ids += messages.map(\.id)
                try await run(.addMessages(messages), on: threadId, as: batch % 2 == 0 ? alice : bob, fixture)
            }
            try await run(.removeMessages([ids[4], ids[7]]), on: threadId, as: alice, fixture)
            try await project(fixture)
            let live = ids.filter { $0 != ids[4] && $0 != ids[7] }

            var seen: [MessageID] = []
            var cursor: Int64?
            var positions: [Int64] = []
            repeat {
                let page = try await fixture.reader.messages(of: threadId, after: cursor, limit: 4)
                seen += page.messages.map(\.id)
                cursor = page.next
                positions += cursor.map { [$0] } ?? []
            } while cursor != nil
            #expect(seen == live)
            #expect(positions == positions.sorted())

            let view = try #require(try await fixture.reader.access(threadId, for: bob).thread)
            #expect(view.messageCount == live.count)
            #expect(try await fixture.reader.access(threadId, for: ULID.generate()).isParticipant == false)
            let members = try await fixture.reader.members(of: threadId)
            #expect(members.map(\.accountId) == [bob])
            #expect(members.first?.addedBy == alice)

            // A page's last message removed since: its position still pages on.
            let firstPage = try await fixture.reader.messages(of: threadId, after: nil, limit: 3)
            try await run(.removeMessages([try #require(firstPage.messages.last?.id)]), on: threadId, as: alice, fixture)
            try await project(fixture)
            let after = try await fixture.reader.messages(of: threadId, after: firstPage.next, limit: 3)
            #expect(after.messages.map(\.id) == Array(live.dropFirst(3).prefix(3)))
        }
    }

    @Test func listsAnAccountsThreadsByLastActivityAndDropsLeftOnes() async throws {
        try await withFixture { fixture in
            let first = ULID.generate(), second = ULID.generate(), third = ULID.generate()
            for threadId in [first, second, third] {
                try await run(.createThread(CreateThread(threadId: threadId, creatorId: alice, title: "t", memberIds: [bob])), on: threadId, as: alice, fixture)
                try await Task.sleep(for: .milliseconds(3))
            }
            try await run(.leaveMembers([bob]), on: second, as: bob, fixture)
            try await run(.destroyThread, on: third, as: alice, fixture)
            try await Task.sleep(for: .milliseconds(3))
            try await run(.addMessages([NewMessage(id: .generate(), text: "bump")]), on: first, as: alice, fixture)
            try await project(fixture)

            #expect(try await fixture.reader.threads(of: alice, asOf: .max, after: nil, limit: 10).threads.map(\.thread.id) == [first, second])
            let bobs = try await fixture.reader.threads(of: bob, asOf: .max, after: nil, limit: 10)
            #expect(bobs.threads.map(\.thread.id) == [first])
            #expect(bobs.total == 1)

            // A late, older redelivery of bob's join cannot bring the entry back.
            let entries = try await changeLogEntries(fixture).filter { $0.threadId == second }
            _ = try await fixture.projector.apply([entries[0].event], of: second)
            #expect(try await fixture.reader.threads(of: bob, asOf: .max, after: nil, limit: 10).threads.map(\.thread.id) == [first])
            let top = try await fixture.reader.threads(of: alice, asOf: .max, after: nil, limit: 1)
            #expect(top.threads.map(\.thread.id) == [first])
            let page = try await fixture.reader.threads(of: alice, asOf: .max, after: top.next, limit: 1)
            #expect(page.threads.map(\.thread.id) == [second])
            #expect(page.total == 2)
            #expect(page.next == nil)
        }
    }

    /// The list's order is taken as of an instant: activity after it moves no
    /// thread, a thread created after it is placed by its creation (and left
    /// out until its view is there), and a read model behind
    /// the stream is read past (the stream is the authority).
    @Test func listsThreadsByTheirActivityAsOfAnInstant() async throws {
        try await withFixture { fixture in
            let first = ULID.generate(), second = ULID.generate()
            for threadId in [first, second] {
                try await run(.createThread(CreateThread(threadId: threadId, creatorId: alice, title: "t")), on: threadId, as: alice, fixture)
                try await Task.sleep(for: .milliseconds(3))
            }
            let before = try await run(.addMessages([NewMessage(id: .generate(), text: "before")]), on: first, as: alice, fixture)
            try await project(fixture)
            try await run(.addMessages([NewMessage(id: .generate(), text: "not yet projected")]), on: second, as: alice, fixture)
            try await Task.sleep(for: .milliseconds(3))
            let instant = CommandRunner.currentTimeMilliseconds()
            try await Task.sleep(for: .milliseconds(3))
            try await run(.addMessages([NewMessage(id: .generate(), text: "after")]), on: first, as: alice, fixture)
            try await Task.sleep(for: .milliseconds(3))
            let third = ULID.generate()
            try await run(.createThread(CreateThread(threadId: third, creatorId: alice, title: "later")), on: third, as: alice, fixture)
            #expect(before.version == 2)
            // `second` is projected only up to its create, but its message (before the instant) counts.
            let asOf = try await fixture.reader.threads(of: alice, asOf: instant, after: nil, limit: 10)
            #expect(asOf.threads.map(\.thread.id) == [second, first])
            try await project(fixture)
            let again = try await fixture.reader.threads(of: alice, asOf: instant, after: nil, limit: 10)
            #expect(again.threads.map(\.thread.id) == [third, second, first])
            #expect(again.threads.dropFirst().map(\.lastActivityAt) == asOf.threads.map(\.lastActivityAt))
            let created = try #require(again.threads.first)
            #expect(created.lastActivityAt == created.thread.createdAt && created.lastActivityAt > instant)
            #expect(again.total == 3)
            let now = try await fixture.reader.threads(of: alice, asOf: .max, after: nil, limit: 10)
            #expect(now.threads.map(\.thread.id) == [third, first, second])

            // Threads last written before the activity index existed are read
            // from their streams: the same places, as of the instant and now.
            for threadId in [first, second, third] {
                _ = try await fixture.send("ZREM", fixture.layout.activityIndex(of: threadId), threadId.rawValue)
            }
            let fromStreams = try await fixture.reader.threads(of: alice, asOf: instant, after: nil, limit: 10)
            #expect(fromStreams.threads.map(\.thread.id) == [third, second, first])
            #expect(fromStreams.threads.map(\.lastActivityAt) == again.threads.map(\.lastActivityAt))
            let nowFromStreams = try await fixture.reader.threads(of: alice, asOf: .max, after: nil, limit: 10)
            #expect(nowFromStreams.threads.map(\.lastActivityAt) == now.threads.map(\.lastActivityAt))
        }
    }

    /// A message touches no account's index: in a thread of 500 members it owes
    /// nothing to any of them, and their index entries keep the membership's version.
    @Test func aMessageCostsTheSameWhateverTheThreadsSize() async throws {
        try await withFixture { fixture in
            let threadId = ULID.generate()
            let members = (0..<500).map { _ in AccountID.generate() }
            try await run(.createThread(CreateThread(threadId: threadId, creatorId: alice, title: "big", memberIds: members)), on: threadId, as: alice, fixture)
            try await project(fixture)
            let versions = fixture.layout.accountThreadVersions(members[0])
            #expect(try await fixture.send("HGET", versions, threadId.rawValue).string == "1")

            try await run(.addMessages([NewMessage(id: .generate(), text: "to everyone")]), on: threadId, as: alice, fixture)
            let message = try #require(try await changeLogEntries(fixture).last { $0.threadId == threadId })
            let reply = try await fixture.send(
                "FCALL", "tw_rm_apply", "6", fixture.layout.threadView(threadId), fixture.layout.administratorsView(threadId),
                fixture.layout.membersView(threadId), fixture.layout.messagesView(threadId), fixture.layout.timelineView(threadId),
                fixture.layout.accountOutbox(threadId), threadId.rawValue, String(message.event.version), message.event.typeName,
                String(message.event.at), alice.rawValue, message.event.data, "1")
            #expect(reply.array?.first?.string == "applied")
            #expect(reply.array?.last?.array?.isEmpty == true, "nothing owed to any account")
            #expect(try await fixture.send("EXISTS", fixture.layout.accountOutbox(threadId)).int == 0)
            #expect(try await fixture.send("HGET", versions, threadId.rawValue).string == "1", "the index entry kept the join's version")
            // Still listed first by its activity: the order is read from the thread.
            #expect(try await fixture.reader.threads(of: members[0], asOf: .max, after: nil, limit: 1).threads.first?.lastActivityAt == message.event.at)
        }
    }

    /// Runs `watcher`'s lanes beside `body`, as a process's service group does.
    func whileRunning(_ watcher: ThreadWatcher, _ body: () async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await watcher.run() }
            defer { group.cancelAll() }
            try await body()
        }
    }

    actor Collected {
        var updates: [ThreadWatcher.Update] = []
        var heartbeats = 0
        func add(_ update: ThreadWatcher.Update) { updates.append(update) }
        func heartbeat() { heartbeats += 1 }
    }

    @Test func watchDeliversNewEventsAndResumesFromLastEventId() async throws {
        try await withFixture { fixture in
            let threadId = ULID.generate()
            let created = try await run(
                .createThread(CreateThread(threadId: threadId, creatorId: alice, title: "w", memberIds: [bob])), on: threadId, as: alice, fixture)
            let watcher = ThreadWatcher(pool: fixture.pool, layout: fixture.layout, logger: testLogger, heartbeatInterval: .milliseconds(100))
            try await whileRunning(watcher) {
                let subscription = try await watcher.subscribe(to: threadId, as: bob, lastEventId: nil)
                #expect(subscription.after == created.version)

                let first = Collected()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await watcher.stream(subscription) { item in
                            if case .event(let update) = item { await first.add(update) }
                        }
                    }
                    for index in 1...5 {
                        try await run(.addMessages([NewMessage(id: .generate(), text: "m\(index)")]), on: threadId, as: alice, fixture)
                    }
                    try await expectEventually { await first.updates.count == 5 }
                    group.cancelAll()
                }
                #expect(await first.updates.map(\.version) == [2, 3, 4, 5, 6])
                #expect(await first.updates.allSatisfy { $0.type == "MessagesAdded" })

                // The client saw up to 4; while it was away 7 and 8 happened. It resumes after 4.
                for index in 6...7 {
                    try await run(.addMessages([NewMessage(id: .generate(), text: "m\(index)")]), on: threadId, as: alice, fixture)
                }
                let resumed = Collected()
                let resumption = try await watcher.subscribe(to: threadId, as: bob, lastEventId: 4)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await watcher.stream(resumption) { item in
                            switch item {
                            case .event(let update): await resumed.add(update)
                            case .heartbeat: await resumed.heartbeat()
                            }
                        }
                    }
                    try await expectEventually { await resumed.updates.count == 4 }
                    try await expectEventually { await resumed.heartbeats > 0 }
                    // Destroying ends the stream by itself.
                    try await run(.destroyThread, on: threadId, as: alice, fixture)
                    try await group.waitForAll()
                }
                #expect(await resumed.updates.map(\.version) == [5, 6, 7, 8, 9])
                #expect(await resumed.updates.last?.type == "ThreadDestroyed")

                await #expect(throws: ThreadWatcher.WatchError.self) {
                    _ = try await watcher.subscribe(to: threadId, as: bob, lastEventId: nil)
                }
            }
        }
    }

    @Test func watchRefusesOutsiders() async throws {
        try await withFixture { fixture in
            let threadId = ULID.generate()
            try await run(.createThread(CreateThread(threadId: threadId, creatorId: alice, title: "w")), on: threadId, as: alice, fixture)
            let watcher = ThreadWatcher(pool: fixture.pool, layout: fixture.layout, logger: testLogger)
            try await whileRunning(watcher) {
                do {
                    _ = try await watcher.subscribe(to: threadId, as: bob, lastEventId: nil)
                    Issue.record("an outsider was let in")
                } catch let error as ThreadWatcher.WatchError {
                    guard case .refused(let refusal) = error else { throw error }
                    #expect(refusal.code == .notParticipant)
                }
            }
        }
    }

    @Test func aSecondRebuildIsRefusedWhileOneHoldsTheLock() async throws {
        try await withFixture { fixture in
            _ = try await fixture.send("SET", fixture.layout.rebuildLock, "someone-else", "PX", "10000")
            do {
                _ = try await fixture.rebuilder.rebuild()
                Issue.record("rebuild ran beside another")
            } catch let error as ReadModelError {
                #expect(error.code == .locked)
            }
            _ = try await fixture.send("DEL", fixture.layout.rebuildLock)
            _ = try await fixture.rebuilder.rebuild()
            #expect(try await fixture.send("EXISTS", fixture.layout.rebuildLock).int == 0)
        }
    }

    @Test func trimsOnlyWhatEveryGroupAcknowledged() async throws {
        try await withFixture(partitions: 1) { fixture in
            let log = fixture.layout.changeLog(partition: 0)
            var ids: [String] = []
            for index in 0..<10 { ids.append(try await fixture.send("XADD", log, "*", "n", String(index)).string!) }
            _ = try await fixture.send("XGROUP", "CREATE", log, "audit", "0")
            // rmu: 6 delivered, 4 of them acked (entries 2 and 3 still pending). audit: 8 delivered and acked.
            _ = try await fixture.send("XREADGROUP", "GROUP", "rmu", "c1", "COUNT", "6", "STREAMS", log, ">")
            _ = try await fixture.pool.send(RedisCommand(["XACK", log, "rmu", ids[0], ids[1], ids[4], ids[5]]))
            _ = try await fixture.send("XREADGROUP", "GROUP", "audit", "c2", "COUNT", "8", "STREAMS", log, ">")
            _ = try await fixture.pool.send(RedisCommand(["XACK", log, "audit"] + Array(ids[0..<8])))

            let maintenance = LogMaintenance(redis: fixture.pool, layout: fixture.layout, logger: testLogger)
            #expect(try await maintenance.trimAcknowledged() == 2)
            #expect(try await fixture.send("XRANGE", log, "-", "+").array?.first?.array?.first?.string == ids[2])

            _ = try await fixture.pool.send(RedisCommand(["XACK", log, "rmu", ids[2], ids[3]]))
            #expect(try await maintenance.trimAcknowledged() == 4)  // up to rmu's last delivered (5)
            #expect(try await fixture.send("XLEN", log).int == 4)

            // c1 holds nothing now, c2 never did: both go when idle long enough.
            try await Task.sleep(for: .milliseconds(50))
            let removed = try await maintenance.removeIdleConsumers(idleLongerThan: .milliseconds(10))
            #expect(removed == ["p00/c1"])
        }
    }
}
