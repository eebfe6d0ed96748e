import EventStore
import ReadModel
import RedisClient
import RedisTestSupport
import Testing
import ThreadDomain

/// A Redis restarted without persistence has no Function libraries: the
/// first command and the first projection load theirs again and carry on.
@Suite("Library reload")
struct LibraryReloadTests {
    @Test("after FUNCTION FLUSH a command and its projection load both libraries again")
    func reloadsAfterAFlush() async throws {
        try await RedisTestServer.with { server in
            try await withFixture(url: server.url) { fixture in
                var writer = HistoryWriter(store: fixture.store, seed: 21, accountCount: 1)
                let creator = writer.accounts[0]
                let threadId = ULID.seeded(&writer.generator)
                try await fixture.send("FUNCTION", "FLUSH")
                #expect(try await fixture.send("FUNCTION", "LIST").array?.isEmpty == true)

                try await writer.run(
                    .createThread(CreateThread(threadId: threadId, creatorId: creator, title: "after a flush")), on: threadId, actor: creator)
                let report = try await fixture.projector.apply(try await changeLogEntries(fixture).map(\.event), of: threadId)
                #expect(report.applied == 1)

                let view = try #require(try await fixture.reader.access(threadId, for: creator).thread)
                #expect(view.version == 1)
                #expect(try await fixture.send("FUNCTION", "LIST").array?.count == 2)
            }
        }
    }
}
