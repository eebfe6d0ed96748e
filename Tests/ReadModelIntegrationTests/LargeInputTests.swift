import EventStore
import ReadModel
import RedisClient
import Testing
import ThreadDomain

/// Redis keeps a function's earlier writes when it fails half-way, and the
/// redelivered event is then taken for a duplicate. These drive every Lua
/// function past Lua's unpack limit (~8,000 values) and past malformed data,
/// and check the read model still equals a rebuild.
@Suite("Large inputs")
struct LargeInputTests {
    @Test("a 10,000-participant thread, a 100-message command and a 1,000-id leave project like a rebuild")
    func tenThousandParticipants() async throws {
        try await withFixture(partitions: 2) { fixture in
            var writer = HistoryWriter(store: fixture.store, seed: 11, accountCount: 1)
            let creator = writer.accounts[0]
            let threadId = ULID.seeded(&writer.generator)
            try await writer.run(.createThread(CreateThread(threadId: threadId, creatorId: creator, title: "big")), on: threadId, actor: creator)
            var joined: [AccountID] = []
            for _ in 0..<10 {
                var batch: [AccountID] = []
                for _ in 0..<1_000 { batch.append(.seeded(&writer.generator)) }
                #expect(try await writer.run(.joinMembers(batch), on: threadId, actor: creator))
                joined += batch
            }
            var messages: [NewMessage] = []
            for index in 0..<100 { messages.append(NewMessage(id: .seeded(&writer.generator), text: "message \(index)")) }
            #expect(try await writer.run(.addMessages(messages), on: threadId, actor: creator))
            #expect(try await writer.run(.leaveMembers(Array(joined.prefix(1_000))), on: threadId, actor: creator))
            #expect(try await writer.run(.removeMessages(messages.prefix(40).map(\.id)), on: threadId, actor: creator))

            // One delivery of the whole history, as a worker's batch would bring it.
            let entries = try await changeLogEntries(fixture)
            let report = try await fixture.projector.apply(entries.map(\.event), of: threadId)
            #expect(report.applied == entries.count)
            #expect(report.rejected.isEmpty)

            let projected = try await dumpReadModel(fixture)
            _ = try await fixture.rebuilder.rebuild()
            #expect(projected == (try await dumpReadModel(fixture)), "projected and rebuilt read models differ")

            let view = try #require(try await fixture.reader.access(threadId, for: creator).thread)
            #expect(view.memberCount == 9_000)
            #expect(view.messageCount == 60)
            #expect(try await fixture.send("EXISTS", fixture.layout.accountOutbox(threadId)).int == 0)
            let stayed = try await fixture.reader.threads(of: joined[9_999], asOf: .max, after: nil, limit: 10).threads.map(\.thread.id)
            let left = try await fixture.reader.threads(of: joined[0], asOf: .max, after: nil, limit: 10).threads.map(\.thread.id)
            #expect(stayed == [threadId])
            #expect(left.isEmpty)
        }
    }

    @Test("a 9,000-message page is read in bounded HMGETs")
    func largeMessagePage() async throws {
        try await withFixture(partitions: 2) { fixture in
            var writer = HistoryWriter(store: fixture.store, seed: 12, accountCount: 1)
            let creator = writer.accounts[0]
            let threadId = ULID.seeded(&writer.generator)
            try await writer.run(.createThread(CreateThread(threadId: threadId, creatorId: creator, title: "long")), on: threadId, actor: creator)
            for _ in 0..<90 {
                var messages: [NewMessage] = []
                for _ in 0..<100 { messages.append(NewMessage(id: .seeded(&writer.generator), text: "hi")) }
                try await writer.run(.addMessages(messages), on: threadId, actor: creator)
            }
            _ = try await fixture.projector.apply(try await changeLogEntries(fixture).map(\.event), of: threadId)

            let page = try await fixture.reader.messages(of: threadId, after: nil, limit: 10_000)
            #expect(page.messages.count == 9_000)
            #expect(Set(page.messages.map(\.id)) == Set(writer.states[threadId]!.messages.keys))
        }
    }

    @Test("an event whose data fails half-way through is rejected with nothing written")
    func malformedEventWritesNothing() async throws {
        try await withFixture(partitions: 2) { fixture in
            var writer = HistoryWriter(store: fixture.store, seed: 13, accountCount: 1)
            let creator = writer.accounts[0]
            let threadId = ULID.seeded(&writer.generator)
            try await writer.run(.createThread(CreateThread(threadId: threadId, creatorId: creator, title: "t")), on: threadId, actor: creator)
            _ = try await fixture.projector.apply(try await changeLogEntries(fixture).map(\.event), of: threadId)
            let before = try await dumpReadModel(fixture)

            // The first message is fine, the second has no id.
            let data = #"{"messages":[{"id":"01J0000000000000000000MSG1","senderId":"\#(creator.rawValue)","text":"a","mentions":[]},{"senderId":"\#(creator.rawValue)","text":"b"}]}"#
            let layout = fixture.layout
            let reply = try await fixture.pool.send(
                RedisCommand(
                    [
                        "FCALL", "tw_rm_apply", "6", layout.threadView(threadId), layout.administratorsView(threadId),
                        layout.membersView(threadId), layout.messagesView(threadId), layout.timelineView(threadId),
                        layout.accountOutbox(threadId), threadId.rawValue, "2", "MessagesAdded", "1700000000000", creator.rawValue,
                        data, "0",
                    ]))
            #expect(reply.array?.first?.string == "rejected")
            #expect(try await dumpReadModel(fixture) == before)
        }
    }
}
