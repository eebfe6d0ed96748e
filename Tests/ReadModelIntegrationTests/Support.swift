import EventStore
import Foundation
import Logging
import ReadModel
import RedisClient
import RedisTestSupport
import Testing
import ThreadDomain

let testLogger = Logger(label: "threadweave.readmodel.tests")

/// A namespace set up like production (both libraries, `rmu` groups), with
/// the pieces the tests drive.
struct Fixture: Sendable {
    let pool: RedisConnectionPool
    let layout: KeyLayout
    var store: RedisEventStore { RedisEventStore(redis: pool, layout: layout, logger: testLogger) }
    var projector: Projector { Projector(redis: pool, layout: layout, logger: testLogger) }
    var reader: ReadModelReader { ReadModelReader(redis: pool, layout: layout, logger: testLogger) }
    var rebuilder: ReadModelRebuilder { ReadModelRebuilder(redis: pool, layout: layout, logger: testLogger) }

    func worker(_ name: String, configure: (inout ReadModelWorker.Configuration) -> Void = { _ in }) -> ReadModelWorker {
        var configuration = ReadModelWorker.Configuration(consumerName: name)
        configuration.block = .milliseconds(100)
        configuration.claimIdleThreshold = .milliseconds(200)
        configuration.claimInterval = .milliseconds(200)
        configuration.metricsInterval = .seconds(60)
        configuration.retryPause = .milliseconds(50)
        configure(&configuration)
        return ReadModelWorker(pool: pool, layout: layout, configuration: configuration, logger: testLogger)
    }

    @discardableResult
    func send(_ arguments: String...) async throws -> RedisValue {
        try await pool.send(RedisCommand(arguments))
    }
}

func withFixture<T: Sendable>(
    partitions: Int = 4, url: String = TestRedis.url, _ body: @Sendable (Fixture) async throws -> T
) async throws -> T {
    var configuration = try RedisConfiguration(url: url)
    configuration.maximumConnections = 8
    let pool = RedisConnectionPool(configuration: configuration, logger: testLogger)
    let layout = KeyLayout(namespace: TestRedis.uniqueNamespace("rm"), partitionCount: partitions)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await pool.run() }
        defer { group.cancelAll() }
        _ = try await StoreSetup.run(on: pool, layout: layout, libraries: StoreSetup.Library.all)
        return try await body(Fixture(pool: pool, layout: layout))
    }
}

/// Runs `body` while a worker runs beside it; the worker is cancelled afterwards.
func whileRunning<T: Sendable>(_ worker: ReadModelWorker, _ body: @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            try await worker.run()
            return nil
        }
        let result = try await body()
        group.cancelAll()
        return result
    }
}

/// Polls `condition` every 20 ms for up to `timeout`.
func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// `eventually`, recorded as an expectation at the caller's line.
func expectEventually(
    timeout: Duration = .seconds(10), sourceLocation: SourceLocation = #_sourceLocation, _ condition: () async throws -> Bool
) async throws {
    let reached = try await eventually(timeout: timeout, condition)
    #expect(reached, "condition not reached within \(timeout)", sourceLocation: sourceLocation)
}

// MARK: - Seeded randomness

/// SplitMix64: a tiny seeded generator, so a failing seed reproduces.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension ULID {
    /// A ULID drawn from `generator`: reproducible ids for seeded tests.
    static func seeded(_ generator: inout some RandomNumberGenerator) -> ULID {
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        var text = String(alphabet[Int.random(in: 0...7, using: &generator)])
        for _ in 1..<26 { text.append(alphabet[Int.random(in: 0..<32, using: &generator)]) }
        return ULID(text)!
    }
}

// MARK: - Histories

/// Valid random command histories over several threads, decided by
/// `ThreadDecider` and appended through the real store, so every event is one
/// the domain would write.
struct HistoryWriter {
    let store: RedisEventStore
    var generator: SeededGenerator
    let accounts: [AccountID]
    var states: [ThreadID: ThreadState] = [:]
    var clock: Int64 = 1_700_000_000_000

    init(store: RedisEventStore, seed: UInt64, accountCount: Int = 6) {
        self.store = store
        self.generator = SeededGenerator(seed: seed)
        var accounts: [AccountID] = []
        for _ in 0..<accountCount { accounts.append(.seeded(&generator)) }
        self.accounts = accounts
    }

    mutating func createThread() async throws -> ThreadID {
        let threadId = ULID.seeded(&generator)
        let creator = accounts.randomElement(using: &generator)!
        let members = accounts.filter { _ in Bool.random(using: &generator) }
        try await run(
            .createThread(CreateThread(threadId: threadId, creatorId: creator, title: "thread \(threadId.rawValue.suffix(4))", memberIds: members)),
            on: threadId, actor: creator)
        return threadId
    }

    /// Tries random commands until one is accepted and writes events (or gives up after 50 draws).
    mutating func randomCommand(on threadId: ThreadID, allowDestroy: Bool = true) async throws {
        for _ in 0..<50 {
            guard let state = states[threadId], !state.isDestroyed else { return }
            let (command, actor) = draw(for: state, allowDestroy: allowDestroy)
            if try await run(command, on: threadId, actor: actor) { return }
        }
    }

    private mutating func draw(for state: ThreadState, allowDestroy: Bool) -> (ThreadCommand, AccountID) {
        let participants = state.administratorIds + state.memberIds
        let admin = state.administratorIds.randomElement(using: &generator)!
        let someone = participants.randomElement(using: &generator) ?? admin
        let others = accounts.filter { _ in Int.random(in: 0..<3, using: &generator) == 0 }
        let some = others.isEmpty ? [accounts.randomElement(using: &generator)!] : others
        let live = state.messages.filter { !$0.value.removed }.map(\.key).sorted()
        switch Int.random(in: 0..<100, using: &generator) {
        case 0..<10: return (.joinMembers(some), admin)
        case 10..<18: return (.leaveMembers(some), admin)
        case 18..<24: return (.joinAdministrators(some), admin)
        case 24..<30: return (.leaveAdministrators(some), admin)
        case 30..<34: return (.leaveMembers([someone]), someone)
        case 34..<80:
            var messages: [NewMessage] = []
            for index in 0..<Int.random(in: 1...3, using: &generator) {
                let replyTo = Bool.random(using: &generator) ? live.randomElement(using: &generator) : nil
                messages.append(
                    NewMessage(id: .seeded(&generator), text: "message \(index) \"quoted\" / ünïcødé", replyTo: replyTo, mentions: [admin]))
            }
            return (.addMessages(messages), someone)
        case 80..<97:
            let victims = live.isEmpty ? [] : [live.randomElement(using: &generator)!]
            return (.removeMessages(victims), admin)
        default:
            return (allowDestroy ? .destroyThread : .joinMembers(some), admin)
        }
    }

    /// Decides and appends; true when events were written.
    @discardableResult
    mutating func run(_ command: ThreadCommand, on threadId: ThreadID, actor: AccountID) async throws -> Bool {
        let state = states[threadId]
        let events: [ThreadEvent]
        do {
            events = try ThreadDecider.decide(state, command, actor: actor)
        } catch {
            return false
        }
        guard !events.isEmpty else { return false }
        clock += Int64.random(in: 1...5_000, using: &generator)
        let request = AppendRequest(
            threadId: threadId, expectedVersion: state?.version ?? 0, events: events, actor: actor,
            commandId: ULID.seeded(&generator).rawValue, at: clock, idempotency: nil)
        guard case .appended = try await store.append(request) else {
            throw TestFailure("append refused for \(threadId)")
        }
        states[threadId] = ThreadDecider.replay(request.recordedEvents(after: request.expectedVersion), from: state)
        return true
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Read-model dumps

/// Every read-model key of the namespace's live generation (named as
/// generation 0 would name it) with a canonical rendering of its
/// value (hash fields sorted, sorted sets with scores in order), for comparing
/// two read models exactly.
func dumpReadModel(_ fixture: Fixture) async throws -> [String: String] {
    var dump: [String: String] = [:]
    let live = try await fixture.layout.liveReadModel(on: fixture.pool, logger: testLogger)
    // Every primary's keys: on a cluster, SCAN sees one node's.
    for node in try await fixture.pool.primaryExecutors() {
        for pattern in live.readModelKeyPatterns {
            var cursor = "0"
            repeat {
                let reply = try await node.send(RedisCommand("SCAN", cursor, "MATCH", pattern, "COUNT", "1000"))
                cursor = reply.array![0].string!
                // Pipelined per SCAN batch: a big thread's read model has tens of thousands of keys.
                let keys = reply.array![1].array!.compactMap(\.string)
                let types = try await fixture.pool.pipeline(keys.map { RedisCommand("TYPE", $0) }).map { try $0.get().string! }
                let values = try await fixture.pool.pipeline(
                    zip(keys, types).map { key, type in
                        switch type {
                        case "hash": RedisCommand("HGETALL", key)
                        case "zset": RedisCommand("ZRANGE", key, "0", "-1", "WITHSCORES")
                        default: RedisCommand("TYPE", key)
                        }
                    })
                for ((generationKey, type), value) in zip(zip(keys, types), values) {
                    let key = live.withoutGeneration(generationKey)
                    let flat = try value.get().array?.compactMap(\.string) ?? []
                    switch type {
                    case "hash":
                        let pairs = stride(from: 0, to: flat.count, by: 2).map { "\(flat[$0])=\(flat[$0 + 1])" }.sorted()
                        dump[key] = "hash " + pairs.joined(separator: "\n")
                    case "zset":
                        dump[key] = "zset " + flat.joined(separator: " ")
                    default:
                        dump[key] = type
                    }
                }
            } while cursor != "0"
        }
    }
    return dump
}

/// The change-log entries of every partition, oldest first per partition.
func changeLogEntries(_ fixture: Fixture) async throws -> [(threadId: ThreadID, event: StoredEvent)] {
    var entries: [(ThreadID, StoredEvent)] = []
    for partition in fixture.layout.allPartitions {
        let reply = try await fixture.send("XRANGE", fixture.layout.changeLog(partition: partition), "-", "+")
        for entry in reply.array ?? [] {
            let decoded = try StreamEntryDecoder.changeLogEntry(fields: entry.array![1].array!)
            entries.append((decoded.threadId, decoded.event))
        }
    }
    return entries
}
