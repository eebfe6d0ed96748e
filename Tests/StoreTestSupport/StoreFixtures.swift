public import EventStore
public import Logging
public import RedisClient
public import RedisTestSupport
public import ThreadDomain

/// Fixtures shared by the store suite and the command-runner tests: the
/// stores the shared suite runs against, and events to write.
///
/// The stores the shared suite runs against.
public enum StoreKind: String, CaseIterable, Sendable {
    case redis, inMemory
}

public let testLogger = Logger(label: "threadweave.tests")

/// Runs `body` with a connection pool on the shared test server; the pool's
/// `run()` lives exactly as long as the body.
public func withRedis<T: Sendable>(
    url: String = TestRedis.url, maximumConnections: Int = 4,
    _ body: @Sendable (RedisConnectionPool) async throws -> T
) async throws -> T {
    var configuration = try RedisConfiguration(url: url)
    configuration.maximumConnections = maximumConnections
    let pool = RedisConnectionPool(configuration: configuration, logger: testLogger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await pool.run() }
        defer { group.cancelAll() }
        return try await body(pool)
    }
}

/// A store of the given kind over a fresh namespace, set up like production.
public func withStore<T: Sendable>(
    _ kind: StoreKind, _ body: @Sendable (any EventStore, KeyLayout, RedisConnectionPool?) async throws -> T
) async throws -> T {
    let layout = KeyLayout(namespace: TestRedis.uniqueNamespace(), partitionCount: 8)
    switch kind {
    case .inMemory:
        return try await body(InMemoryEventStore(), layout, nil)
    case .redis:
        return try await withRedis { pool in
            _ = try await StoreSetup.run(on: pool, layout: layout)
            return try await body(RedisEventStore(redis: pool, layout: layout, logger: testLogger), layout, pool)
        }
    }
}

public let alice = ULID.generate()
public let bob = ULID.generate()

public func createThread(_ threadId: ThreadID, creator: AccountID = alice, members: [AccountID] = [bob]) -> ThreadEvent {
    .threadCreated(
        ThreadCreated(
            threadId: threadId, creatorId: creator, parentThreadId: nil, title: "Weekly sync", remarks: nil,
            administratorIds: [creator], memberIds: members))
}

public func message(_ id: MessageID = .generate(), from sender: AccountID = alice, text: String = "hello", replyTo: MessageID? = nil)
    -> AddedMessage
{
    AddedMessage(id: id, senderId: sender, text: text, replyTo: replyTo, mentions: [])
}

public func appendRequest(
    _ threadId: ThreadID, expected: Int64, _ events: [ThreadEvent], actor: AccountID = alice,
    commandId: String = ULID.generate().rawValue, idempotency: AppendRequest.Idempotency? = nil,
    at: Int64 = 1_700_000_000_000
) -> AppendRequest {
    AppendRequest(
        threadId: threadId, expectedVersion: expected, events: events, actor: actor, commandId: commandId,
        at: at, idempotency: idempotency)
}

/// A store behind which another writer appends an event of its own just
/// before each append (but a create's), at the version that append expects,
/// as a busy process elsewhere would. By default a membership change (its
/// own join again), so every such append conflicts; a message instead lets
/// posts land after it.
public struct InterferingStore<Base: EventStore>: EventStore {
    public let base: Base
    public let interloper: AccountID
    public let interference: @Sendable (AccountID) -> ThreadEvent

    public init(
        base: Base, interloper: AccountID,
        interference: @escaping @Sendable (AccountID) -> ThreadEvent = { .memberIdsJoined([$0]) }
    ) {
        self.base = base
        self.interloper = interloper
        self.interference = interference
    }

    public func load(
        _ threadId: ThreadID, since base: ThreadState?, messageIds: [MessageID], commandId: String?
    ) async throws(EventStoreError) -> LoadedThread {
        try await self.base.load(threadId, since: base, messageIds: messageIds, commandId: commandId)
    }

    public func append(_ request: AppendRequest) async throws(EventStoreError) -> AppendOutcome {
        if request.expectedVersion > 0 {
            _ = try await base.append(appendRequest(
                request.threadId, expected: request.expectedVersion, [interference(interloper)],
                actor: interloper))
        }
        return try await base.append(request)
    }

    public func events(of threadId: ThreadID, after version: Int64, limit: Int) async throws(EventStoreError) -> [RecordedEvent] {
        try await base.events(of: threadId, after: version, limit: limit)
    }
}

/// An `InterferingStore` over a store known by its protocol only.
public func interferingStore(
    over base: some EventStore, interloper: AccountID, interference: @escaping @Sendable (AccountID) -> ThreadEvent
) -> any EventStore {
    InterferingStore(base: base, interloper: interloper, interference: interference)
}
