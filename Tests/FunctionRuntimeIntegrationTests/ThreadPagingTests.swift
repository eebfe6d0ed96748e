import EventStore
import Foundation
import HTTPTypes
import HummingbirdTesting
import ReadModel
import Synchronization
import Testing
import ThreadDomain
import ThreadFunctions

/// list-threads and list-messages page by an opaque `cursor`; list-threads
/// keeps every thread's place for the whole paging however active it is.
@Suite(.timeLimit(.minutes(3))) struct ThreadPagingTests {
    struct ThreadsPage: Decodable {
        struct Listed: Decodable {
            var id: ThreadID
            var lastActivityAt: Int64
        }
        var threads: [Listed]
        var total: Int
        var limit: Int
        var nextCursor: String?
    }

    struct MessagesPage: Decodable {
        struct Message: Decodable { var id: MessageID }
        var messages: [Message]
        var nextCursor: String?
    }

    @Test func pagingWhileThreadsAreWrittenListsEachThreadExactlyOnceInOrder() async throws {
        try await TestGateway.run(readSide: .worker) { gateway in
            let reader = ULID.generate()
            let threads = try await createListedThreads(120, by: reader, gateway)

            let paging = Flag(true)
            let writes = Counter()
            let listed: [ThreadsPage.Listed] = try await withThrowingTaskGroup(of: [ThreadsPage.Listed].self) { group in
                for writer in 0..<3 {
                    group.addTask {
                        var generator = SystemRandomNumberGenerator()
                        while paging.isSet {
                            let thread = threads.randomElement(using: &generator)!
                            let response = try await gateway.addMessage("from writer \(writer)", by: reader, to: thread)
                            #expect(response.status == .ok, "\(response.text)")
                            writes.increment()
                        }
                        return []
                    }
                }
                group.addTask {
                    defer { paging.clear() }
                    var listed: [ThreadsPage.Listed] = []
                    var cursor: String?
                    var pages = 0
                    repeat {
                        // Let the writers move threads between pages.
                        try await Task.sleep(for: .milliseconds(15))
                        let page = try await listThreads(of: reader, limit: 7, cursor: cursor, gateway)
                        #expect(page.threads.count == 7 || page.nextCursor == nil)
                        #expect(page.limit == 7)
                        listed += page.threads
                        cursor = page.nextCursor
                        pages += 1
                    } while cursor != nil && pages < 100
                    return listed
                }
                var all: [ThreadsPage.Listed] = []
                for try await part in group { all += part }
                return all
            }

            #expect(writes.value >= 10, "the writers wrote while the paging ran")
            #expect(listed.count == 120)
            #expect(Set(listed.map(\.id)) == Set(threads), "every thread exactly once")
            let places = listed.map { ($0.lastActivityAt, $0.id.rawValue) }
            #expect(zip(places, places.dropFirst()).allSatisfy { $0 > $1 }, "latest activity first across all pages")
            // The writers did move threads: a fresh first page orders by the newer activity
            // (once it is older than the instant's margin).
            try await Task.sleep(for: .milliseconds(ListThreadsHandler.instantMargin + 100))
            let fresh = try await listThreads(of: reader, limit: 100, cursor: nil, gateway)
            #expect(fresh.threads.first.map { $0.lastActivityAt > listed[0].lastActivityAt } == true)
        }
    }

    /// A command's events are stamped when it is decided and land later. One
    /// decided just before a paging's first page, that lands after it was read,
    /// must not move its thread ahead of the cursor (the paging would skip it).
    @Test func aPostStampedBeforeThePagingThatLandsDuringItMovesNoThread() async throws {
        try await TestGateway.run(readSide: .worker) { gateway in
            let reader = ULID.generate()
            let threads = try await createListedThreads(6, by: reader, gateway)
            try await Task.sleep(for: .milliseconds(ListThreadsHandler.instantMargin + 100))
            let order = try await listThreads(of: reader, limit: 6, cursor: nil, gateway).threads.map(\.id)
            #expect(Set(order) == Set(threads))
            let oldest = try #require(order.last)

            let decidedAt = CommandRunner.currentTimeMilliseconds()
            let first = try await listThreads(of: reader, limit: 2, cursor: nil, gateway)
            // Decided at `decidedAt`, before the first page's clock, and landing after it was read.
            let lateRunner = CommandRunner(
                store: RedisEventStore(redis: gateway.redis, layout: gateway.layout, logger: .init(label: "test")),
                logger: .init(label: "test"), now: { decidedAt })
            _ = try await lateRunner.run(CommandRequest(
                threadId: oldest, command: .addMessages([NewMessage(id: ULID.generate(), text: "late")]), actor: reader))

            var listed = first.threads
            var cursor = first.nextCursor
            while let next = cursor {
                let page = try await listThreads(of: reader, limit: 2, cursor: next, gateway)
                listed += page.threads
                cursor = page.nextCursor
            }
            #expect(listed.map(\.id) == order, "each thread once, where the paging's first page placed it")
        }
    }

    /// A thread whose first event is after the paging's instant (created in
    /// its margin, or since) has no activity as of it: its creation places it.
    @Test func aThreadCreatedAfterThePagingsInstantIsPlacedByItsCreation() async throws {
        try await TestGateway.run(readSide: .worker) { gateway in
            let reader = ULID.generate()
            let older = try await gateway.createThread(creator: reader)
            let newer = try await gateway.createThread(creator: reader)
            // The account index is written after the thread's view: get-thread's minVersion does not wait for it.
            try await waitUntilListed(2, for: reader, gateway)
            let posted = try await gateway.addMessage("after its creation", by: reader, to: newer)
            #expect(posted.status == .ok, "\(posted.text)")
            var created: [ThreadID: Int64] = [:]
            for thread in [older, newer] {
                let view = try await gateway.get("/v1/threads/\(thread)?accountId=\(reader)&minVersion=\(thread == newer ? 2 : 1)")
                created[thread] = try decode(CreatedAt.self, view).createdAt
            }
            // A paging whose instant is before both threads were created, from its top.
            let top = ThreadListCursor(
                instant: try #require(created[older]) - 1,
                position: ThreadListPosition(lastActivityAt: Int64.max, threadId: try #require(ThreadID("7ZZZZZZZZZZZZZZZZZZZZZZZZZ"))))
            let page = try await listThreads(of: reader, limit: 10, cursor: top.encoded, gateway)
            #expect(page.threads.map(\.id) == [newer, older].sorted { (created[$0]!, $0.rawValue) > (created[$1]!, $1.rawValue) })
            #expect(page.threads.map(\.lastActivityAt) == page.threads.map { created[$0.id] })
        }
    }

    private struct CreatedAt: Decodable { var createdAt: Int64 }

    @Test func messagesComeInPagesThatSurviveARemovedLastMessage() async throws {
        try await TestGateway.run(readSide: .worker) { gateway in
            let creator = ULID.generate()
            let thread = try await gateway.createThread(creator: creator)
            var ids: [MessageID] = []
            for index in 0..<5 {
                ids += try #require(try await gateway.addMessage("m\(index)", by: creator, to: thread).answer().messageIds)
            }
            let base = "/v1/threads/\(thread)/messages?accountId=\(creator)&limit=2"
            let first = try decode(MessagesPage.self, try await gateway.get("\(base)&minVersion=6"))
            #expect(first.messages.map(\.id) == Array(ids.prefix(2)))
            let cursor = try #require(first.nextCursor)
            #expect(!cursor.contains(ids[1].rawValue), "the cursor is opaque")

            let removed = try await gateway.post(
                "/v1/threads/\(thread)/messages/remove", json(["accountId": creator.rawValue, "messageIds": [ids[1].rawValue]]))
            #expect(removed.status == .ok, "\(removed.text)")
            let second = try decode(MessagesPage.self, try await gateway.get("\(base)&minVersion=7&cursor=\(cursor)"))
            #expect(second.messages.map(\.id) == Array(ids[2..<4]))
            let third = try decode(MessagesPage.self, try await gateway.get("\(base)&cursor=\(try #require(second.nextCursor))"))
            #expect(third.messages.map(\.id) == [ids[4]])
            #expect(third.nextCursor == nil)
        }
    }

    @Test(arguments: ["nonsense", "dDEuMS4yLjM", "bTEuMTIz", "", "%2F%2F%2F"])
    func aCursorListThreadsDidNotGiveOutIsInvalid(_ cursor: String) async throws {
        try await TestGateway.run(readSide: .worker) { gateway in
            let account = ULID.generate()
            let response = try await gateway.get("/v1/threads?accountId=\(account)&cursor=\(cursor)")
            #expect(response.status == .badRequest, "\(response.text)")
            #expect(try response.errorCode() == "invalid_request")
        }
    }

    @Test func aThreadsCursorIsNoMessagesCursor() async throws {
        try await TestGateway.run(readSide: .worker) { gateway in
            let creator = ULID.generate()
            let thread = try await createListedThreads(2, by: creator, gateway)[0]
            let threadsCursor = try #require(try await listThreads(of: creator, limit: 1, cursor: nil, gateway).nextCursor)
            let response = try await gateway.get("/v1/threads/\(thread)/messages?accountId=\(creator)&cursor=\(threadsCursor)")
            #expect(response.status == .badRequest, "\(response.text)")
            #expect(try response.errorCode() == "invalid_request")
        }
    }

    private func listThreads(of account: AccountID, limit: Int, cursor: String?, _ gateway: TestGateway) async throws -> ThreadsPage {
        let query = "accountId=\(account)&limit=\(limit)" + (cursor.map { "&cursor=\($0)" } ?? "")
        return try decode(ThreadsPage.self, try await gateway.get("/v1/threads?\(query)"))
    }

    /// Creates `count` threads of `creator`, in order, and waits until list-threads counts them all.
    private func createListedThreads(_ count: Int, by creator: AccountID, _ gateway: TestGateway) async throws -> [ThreadID] {
        var threads: [ThreadID] = []
        for _ in 0..<count { threads.append(try await gateway.createThread(creator: creator)) }
        try await waitUntilListed(count, for: creator, gateway)
        return threads
    }

    private func waitUntilListed(_ count: Int, for account: AccountID, _ gateway: TestGateway) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while try await listThreads(of: account, limit: 100, cursor: nil, gateway).total < count {
            guard ContinuousClock.now < deadline else { throw TestFailure("the read model did not list \(count) threads") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    private func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
        guard response.status == .ok else { throw TestFailure("answered \(response.status): \(response.text)") }
        return try JSONDecoder().decode(T.self, from: Data(buffer: response.body))
    }
}

/// A flag one task clears and others watch (an `Atomic` cannot be captured by task-group children).
private final class Flag: Sendable {
    private let state: Atomic<Bool>
    init(_ value: Bool) { state = Atomic(value) }
    var isSet: Bool { state.load(ordering: .acquiring) }
    func clear() { state.store(false, ordering: .releasing) }
}

private final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    var value: Int { count.load(ordering: .relaxed) }
    func increment() { count.add(1, ordering: .relaxed) }
}
