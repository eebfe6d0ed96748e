import EventStore
import Foundation
import MetricsTestKit
import ReadModel
import RedisClient
import Synchronization
import Testing
import ThreadDomain
import ThreadFunctions

@Suite("Read-model worker", .timeLimit(.minutes(2)))
struct WorkerTests {
    /// Writes `threads` threads with `commands` random commands each (no destroys, so every thread stays readable).
    func writeHistory(_ fixture: Fixture, seed: UInt64, threads: Int = 4, commands: Int = 15) async throws -> HistoryWriter {
        var writer = HistoryWriter(store: fixture.store, seed: seed)
        for _ in 0..<threads {
            let threadId = try await writer.createThread()
            for _ in 0..<commands { try await writer.randomCommand(on: threadId, allowDestroy: false) }
        }
        return writer
    }

    func pendingCount(_ fixture: Fixture) async throws -> Int {
        var total = 0
        for partition in fixture.layout.allPartitions {
            let summary = try await fixture.send("XPENDING", fixture.layout.changeLog(partition: partition), "rmu")
            total += summary.array?.first?.int ?? 0
        }
        return total
    }

    /// Delivers every change log's entries to `consumer`, which never acknowledges them (a worker
    /// that dies after reading): each log's raw entries, in partition order. One log per read: on a
    /// cluster the partitions' logs live in different slots.
    func deliverEverything(_ fixture: Fixture, to consumer: String) async throws -> [[RedisValue]] {
        var entriesPerLog: [[RedisValue]] = []
        for partition in fixture.layout.allPartitions {
            let read = try await fixture.send(
                "XREADGROUP", "GROUP", "rmu", consumer, "COUNT", "1000", "STREAMS", fixture.layout.changeLog(partition: partition), ">")
            entriesPerLog.append(read.array?.first?.array?[1].array ?? [])
        }
        return entriesPerLog
    }

    func caughtUp(_ fixture: Fixture, _ states: [ThreadID: ThreadState]) async throws -> Bool {
        for (threadId, state) in states where try await fixture.reader.version(of: threadId) != state.version {
            return false
        }
        return true
    }

    @Test func projectsEverythingAndAcknowledgesIt() async throws {
        try await withFixture(partitions: 3) { fixture in
            let writer = try await writeHistory(fixture, seed: 11)
            try await whileRunning(fixture.worker("w1")) {
                try await expectEventually { try await caughtUp(fixture, writer.states) }
                try await expectEventually { try await pendingCount(fixture) == 0 }
            }
            let projected = try await dumpReadModel(fixture)
            _ = try await fixture.rebuilder.rebuild()
            #expect(try await dumpReadModel(fixture) == projected)
        }
    }

    /// A rebuild builds the next generation beside the live one: queries
    /// answer every thread throughout, events written meanwhile reach the
    /// new generation, and the old one is dropped after the switch.
    @Test func queriesKeepAnsweringWhileARebuildRunsAndWritesGoOn() async throws {
        try await withFixture(partitions: 3) { fixture in
            let history = try await writeHistory(fixture, seed: 31, threads: 12, commands: 10)
            let threads = history.states.map { ($0.key, $0.value.creatorId) }
            let reader = fixture.reader
            try await whileRunning(fixture.worker("w1")) {
                try await expectEventually { try await caughtUp(fixture, history.states) }
                let rebuilding = Flag(true)
                let (report, writer) = try await withThrowingTaskGroup(of: HistoryWriter?.self) { group in
                    group.addTask {
                        // Every thread, over and over: never missing while the rebuild runs.
                        var reads = 0
                        while rebuilding.isSet {
                            for (threadId, creator) in threads {
                                let access = try await reader.access(threadId, for: creator)
                                #expect(access.thread != nil, "thread \(threadId) vanished during the rebuild")
                                reads += 1
                            }
                        }
                        #expect(reads > threads.count)
                        return nil
                    }
                    group.addTask {
                        var writer = history
                        while rebuilding.isSet {
                            for (threadId, _) in threads.prefix(4) { try await writer.randomCommand(on: threadId, allowDestroy: false) }
                            try await Task.sleep(for: .milliseconds(50))
                        }
                        return writer
                    }
                    let report = try await fixture.rebuilder.rebuild()
                    // Writes go on a little after the switch, too.
                    try await Task.sleep(for: .milliseconds(300))
                    rebuilding.clear()
                    var writer: HistoryWriter?
                    for try await result in group { writer = writer ?? result }
                    return (report, try #require(writer))
                }
                #expect(report.generation == 1)
                #expect(report.keysDropped > 0)
                try await expectEventually { try await caughtUp(fixture, writer.states) }
            }
            #expect(try await fixture.send("HGET", fixture.layout.config, "readModel").string == "1")
            #expect(try await fixture.send("HEXISTS", fixture.layout.config, "readModelNext").int == 0)
            for node in try await fixture.pool.primaryExecutors() {
                for pattern in fixture.layout.readModelKeyPatterns {
                    let left = try await node.send(RedisCommand("SCAN", "0", "MATCH", pattern, "COUNT", "100000"))
                    #expect(left.array?[1].array?.isEmpty == true, "generation 0 is dropped: \(pattern)")
                }
            }
        }
    }

    /// One batch over several threads: each thread's run lands in version
    /// order; a thread that meets a gap closes it from its stream, and a thread
    /// whose apply fails fails alone. Through the pool, and with a first round
    /// on one or three connections of the worker's own (the threads in
    /// pipelines of a bounded size, more than three here, dealt out over the
    /// connections; the gapped, owing and failing ones going on through the pool).
    @Test(arguments: [0, 1, 3])
    func aBatchOverManyThreadsAppliesEachAndIsolatesTheirFailures(ownConnections: Int) async throws {
        try await withFixture(partitions: 2) { fixture in
            let writer = try await writeHistory(fixture, seed: 31, threads: 16, commands: 8)
            let entries = try await changeLogEntries(fixture)
            let threads = Array(writer.states.keys).sorted()
            let (gapped, repeated, broken) = (threads[1], threads[2], threads[3])
            let wholeThreads = [threads[0]] + threads[4...]
            var batch = entries.filter { wholeThreads.contains($0.threadId) || $0.threadId == repeated || $0.threadId == broken }
            batch += entries.filter { $0.threadId == repeated }
            // The gapped thread's first two events are left out: the apply reads them from the stream.
            let gappedEvents = entries.filter { $0.threadId == gapped }
            batch += gappedEvents.dropFirst(2)
            batch.shuffle()
            #expect(batch.count > 3 * Projector.applicationsPerFirstRoundPipeline, "a first round of four pipelines or more")
            // The broken thread's hash is not a hash: its FCALL fails with WRONGTYPE.
            _ = try await fixture.send("SET", fixture.layout.threadView(broken), "not a hash")

            var handles: [DedicatedRedisConnection] = []
            for _ in 0..<ownConnections { handles.append(try await fixture.pool.dedicatedConnection()) }
            defer { for handle in handles { handle.release() } }
            var clientIds: [Int] = []
            for handle in handles { clientIds.append(try #require(try await handle.connection.send(RedisCommand("CLIENT", "ID")).int)) }
            let results = await fixture.projector.apply(batch, firstRoundOn: handles.map(\.connection))
            // The applies went out on each of them: a connection's last command is the TIME that ends a
            // first-round pipeline, no longer CLIENT ID.
            for clientId in clientIds {
                let client = try await fixture.send("CLIENT", "LIST", "ID", String(clientId))
                #expect(client.string?.contains(" cmd=time ") == true, "\(client)")
            }
            #expect(Set(results.keys) == Set(threads))
            #expect(throws: ReadModelError.self) { try results[broken]?.get() }
            let states = writer.states
            for threadId in wholeThreads + [gapped, repeated] {
                let report = try #require(try results[threadId]?.get())
                #expect(report.applied + report.caughtUp == Int(states[threadId]!.version), "every version applied once")
                #expect(report.duplicates == 0 && report.rejected.isEmpty)
                #expect(report.caughtUp == (threadId == gapped ? 2 : 0))
                #expect(try await fixture.reader.version(of: threadId) == states[threadId]!.version)
            }
            // The account operations they owed were carried out and settled.
            for threadId in wholeThreads + [gapped, repeated] {
                let owed = try await fixture.send("HLEN", fixture.layout.accountOutbox(threadId))
                #expect(owed.int == 0, "\(threadId) owes nothing")
            }
        }
    }

    /// A thread finished in a first round reports Redis's clock right after
    /// its applies, the moment queries began to see them (the worker's lag is
    /// measured to it); a thread that went on through the pool reports none.
    @Test func aFirstRoundReportsRedisClockAfterItsApplies() async throws {
        try await withFixture(partitions: 2) { fixture in
            var writer = HistoryWriter(store: fixture.store, seed: 41)
            let (posted, joined) = (try await writer.createThread(), try await writer.createThread())
            for result in await fixture.projector.apply(try await changeLogEntries(fixture)).values { _ = try result.get() }
            let text = NewMessage(id: .seeded(&writer.generator), text: "hello", replyTo: nil, mentions: [])
            #expect(try await writer.run(.addMessages([text]), on: posted, actor: writer.states[posted]!.creatorId))
            let newcomer = AccountID.seeded(&writer.generator)
            #expect(try await writer.run(.joinMembers([newcomer]), on: joined, actor: writer.states[joined]!.creatorId))
            let batch = try await changeLogEntries(fixture).filter { $0.event.version == 2 }
            #expect(batch.count == 2)

            // On a cluster the connection must be to the node serving the thread's partition.
            let handle = try await fixture.pool.dedicatedConnection(forKey: fixture.layout.changeLog(of: posted))
            defer { handle.release() }
            func redisClock() async throws -> Double {
                let reply = try await handle.connection.send(RedisCommand("TIME"))
                let time = reply.array?.compactMap { $0.string.flatMap(Double.init) } ?? []
                try #require(time.count == 2, "TIME answered \(reply)")
                return time[0] * 1000 + time[1] / 1000
            }
            let before = try await redisClock()
            let results = await fixture.projector.apply(batch, firstRoundOn: [handle.connection])
            let after = try await redisClock()
            let appliedBy = try #require(try results[posted]?.get().appliedBy)
            #expect(appliedBy >= before && appliedBy <= after, "\(before) ≤ \(appliedBy) ≤ \(after)")
            // The join owes the newcomer's account index: it finished through the pool.
            #expect(try results[joined]?.get().appliedBy == nil)
            #expect(try results[joined]?.get().applied == 1)
        }
    }

    /// A worker dies after reading (its entries pending, some already applied,
    /// none acked); another takes them over with XAUTOCLAIM and finishes.
    @Test func aSecondWorkerTakesOverTheEntriesOfADeadOne() async throws {
        try await withFixture(partitions: 2) { fixture in
            let writer = try await writeHistory(fixture, seed: 23, threads: 3, commands: 20)
            let delivered = try await deliverEverything(fixture, to: "doomed").joined().map { entry in
                try StreamEntryDecoder.changeLogEntry(fields: entry.array![1].array!)
            }
            let total = try await changeLogEntries(fixture).count
            #expect(delivered.count == total)
            // It applied the first half before it was killed: never acked.
            for result in (await fixture.projector.apply(Array(delivered.prefix(delivered.count / 2)))).values { _ = try result.get() }
            #expect(try await pendingCount(fixture) == total)

            try await whileRunning(fixture.worker("survivor")) {
                try await expectEventually { try await pendingCount(fixture) == 0 }
                try await expectEventually { try await caughtUp(fixture, writer.states) }
            }
            // Exact versions and counts, and nothing applied twice: equal to a replay.
            let states = writer.states
            for (threadId, state) in states {
                let view = try #require(try await fixture.reader.access(threadId, for: state.creatorId).thread)
                #expect(view.version == state.version)
                #expect(view.messageCount == state.messages.values.filter { !$0.removed }.count)
                #expect(view.memberCount == state.memberIds.count)
                #expect(view.administratorCount == state.administratorIds.count)
            }
            let projected = try await dumpReadModel(fixture)
            _ = try await fixture.rebuilder.rebuild()
            #expect(try await dumpReadModel(fixture) == projected)
            let deadLetters = try await DeadLetters(redis: fixture.pool, layout: fixture.layout, logger: testLogger).list()
            #expect(deadLetters.isEmpty)
        }
    }

    /// A claim pass asks every log at once, then pages on through a log that
    /// holds more stale entries than a batch: each is taken over, projected and acknowledged.
    @Test func aClaimPassTakesOverEveryStaleEntryAcrossLogsAndPages() async throws {
        try await withFixture(partitions: 4) { fixture in
            let writer = try await writeHistory(fixture, seed: 41, threads: 6, commands: 20)
            let batchSize = 7
            let readPerLog = try await deliverEverything(fixture, to: "doomed").map(\.count)
            let total = try await changeLogEntries(fixture).count
            #expect(readPerLog.reduce(0, +) == total)
            #expect(readPerLog.max()! > batchSize, "a log must need a second page: \(readPerLog)")
            #expect(try await pendingCount(fixture) == total)
            // Idle past the fixture's 200 ms threshold.
            try await Task.sleep(for: .milliseconds(300))

            let claimed = try await fixture.worker("survivor") { $0.batchSize = batchSize }.claimStale()
            #expect(claimed == total)
            #expect(try await pendingCount(fixture) == 0)
            #expect(try await caughtUp(fixture, writer.states))
        }
    }

    @Test func aPoisonEntryGoesToTheDeadLettersAndThePartitionKeepsGoing() async throws {
        try await withFixture(partitions: 2) { fixture in
            var writer = HistoryWriter(store: fixture.store, seed: 31)
            let threadId = try await writer.createThread()
            let partition = fixture.layout.partition(of: threadId)
            let log = fixture.layout.changeLog(partition: partition)
            let poisonId = try await fixture.send(
                "XADD", log, "*", "thread", "not-a-thread", "version", "x", "type", "Nonsense", "data", "{").string!
            try await writer.randomCommand(on: threadId, allowDestroy: false)
            try await writer.randomCommand(on: threadId, allowDestroy: false)
            let states = writer.states

            try await whileRunning(fixture.worker("w1")) {
                try await expectEventually { try await caughtUp(fixture, states) }
                try await expectEventually { try await pendingCount(fixture) == 0 }
            }
            let letters = try await DeadLetters(redis: fixture.pool, layout: fixture.layout, logger: testLogger).list()
            #expect(letters.count == 1)
            let letter = try #require(letters.first)
            #expect(letter.partition == partition)
            #expect(letter.originalId == poisonId)
            #expect(letter.reason.hasPrefix("undecodable"))
            #expect(letter.fields.map(\.name) == ["thread", "version", "type", "data"])
            #expect(letter.fields.first?.value == "not-a-thread")

            // Replay puts it back on the log (a fresh entry) and off the dead letters; it dies again, once.
            let deadLetters = DeadLetters(redis: fixture.pool, layout: fixture.layout, logger: testLogger)
            #expect(try await deadLetters.replayAll() == 1)
            #expect(try await deadLetters.list().isEmpty)
            try await whileRunning(fixture.worker("w2")) {
                try await expectEventually { try await deadLetters.list().count == 1 }
            }
        }
    }

    /// The worker hands an entry's data on as stored, so the read model's own
    /// checks stop a well-formed entry whose data no append could write: it is
    /// refused into the dead letters, and the thread's read model stays as it was.
    @Test func anEntryWithDataTheReadModelRefusesGoesToTheDeadLetters() async throws {
        try await withFixture(partitions: 2) { fixture in
            var writer = HistoryWriter(store: fixture.store, seed: 37)
            let threadIds = [try await writer.createThread(), try await writer.createThread()]
            let actor = ULID.generate().rawValue
            for (threadId, data) in zip(threadIds, [#"{"accountIds":["not-a-ulid"]}"#, #"{"accountIds":"#]) {
                _ = try await fixture.send(
                    "XADD", fixture.layout.changeLog(partition: fixture.layout.partition(of: threadId)), "*",
                    "thread", threadId.rawValue, "version", "2", "type", "MemberIdsJoined",
                    "at", "1700000000000", "actor", actor, "data", data)
            }
            let deadLetters = DeadLetters(redis: fixture.pool, layout: fixture.layout, logger: testLogger)
            try await whileRunning(fixture.worker("w1")) {
                try await expectEventually {
                    let refused = try await deadLetters.list().count
                    let pending = try await pendingCount(fixture)
                    return refused == 2 && pending == 0
                }
            }
            let letters = try await deadLetters.list()
            #expect(Set(letters.map(\.reason)) == [
                "refused: MemberIdsJoined data has no list of account ids", "refused: data is not a JSON object",
            ])
            for threadId in threadIds {
                #expect(try await fixture.send("HGET", fixture.layout.threadView(threadId), "version").string == "1")
            }
            #expect(try await fixture.send("HEXISTS", fixture.layout.membersView(threadIds[0]), "not-a-ulid").int == 0)
        }
    }

    /// Read-your-writes: a command, then a read with the version it returned, 1,000 times.
    @Test func readYourWritesWithMinVersion() async throws {
        try await withFixture(partitions: 4) { fixture in
            let runner = CommandRunner(store: fixture.store, logger: testLogger)
            let alice = ULID.generate()
            let threadId = ULID.generate()
            let reader = fixture.reader
            try await whileRunning(fixture.worker("w1") { $0.block = .seconds(1) }) {
                let created = try await runner.run(
                    CommandRequest(threadId: threadId, command: .createThread(CreateThread(threadId: threadId, creatorId: alice, title: "ryw")), actor: alice))
                try await reader.waitForVersion(created.version, of: threadId)
                for round in 1...1000 {
                    let messageId = ULID.generate()
                    let outcome = try await runner.run(
                        CommandRequest(threadId: threadId, command: .addMessages([NewMessage(id: messageId, text: "m\(round)")]), actor: alice))
                    try await reader.waitForVersion(outcome.version, of: threadId)
                    let access = try await reader.access(threadId, for: alice)
                    let view = try #require(access.thread)
                    #expect(view.version >= outcome.version)
                    #expect(view.messageCount == round)
                    if round % 100 == 0 {
                        let page = try await reader.messages(of: threadId, after: nil, limit: 100)
                        #expect(page.messages.count == 100)
                    }
                }
            }
        }
    }

    @Test func minVersionThatIsNeverReachedTimesOut() async throws {
        try await withFixture { fixture in
            let reader = ReadModelReader(
                redis: fixture.pool, layout: fixture.layout, logger: testLogger,
                waitPolicy: .init(timeout: .milliseconds(200)))
            let started = ContinuousClock.now
            await #expect(throws: ReadModelError.self) { try await reader.waitForVersion(5, of: ULID.generate()) }
            #expect(ContinuousClock.now - started < .seconds(2))
        }
    }

    @Test func gaugesReflectLagPendingAndDeadLetters() async throws {
        try await withFixture(partitions: 2) { fixture in
            var writer = HistoryWriter(store: fixture.store, seed: 41)
            let threadId = try await writer.createThread()
            for _ in 0..<9 { try await writer.randomCommand(on: threadId, allowDestroy: false) }
            let partition = fixture.layout.partition(of: threadId)
            let other = 1 - partition
            let log = fixture.layout.changeLog(partition: partition)
            let written = try await fixture.send("XLEN", log).int!
            let metrics = TestMetrics()
            let monitor = ConsumerGroupMonitor(redis: fixture.pool, layout: fixture.layout, metricsFactory: metrics)

            var samples = try await monitor.sample()
            #expect(samples[partition] == .init(partition: partition, lag: written, pending: 0, deadLetters: 0))
            #expect(samples[other] == .init(partition: other, lag: 0, pending: 0, deadLetters: 0))

            // A consumer reads 3 without acking; one entry is dead-lettered by hand.
            _ = try await fixture.send("XREADGROUP", "GROUP", "rmu", "slow", "COUNT", "3", "STREAMS", log, ">")
            _ = try await fixture.send("XADD", fixture.layout.deadLetters(partition: partition), "*", "reason", "test")
            samples = try await monitor.sample()
            #expect(samples[partition] == .init(partition: partition, lag: written - 3, pending: 3, deadLetters: 1))

            monitor.record(samples)
            let tag = partition < 10 ? "p0\(partition)" : "p\(partition)"
            #expect(try metrics.expectGauge(ConsumerGroupMonitor.lagLabel, [("partition", tag)]).lastValue == Double(written - 3))
            #expect(try metrics.expectGauge(ConsumerGroupMonitor.pendingLabel, [("partition", tag)]).lastValue == 3)
            #expect(try metrics.expectGauge(ConsumerGroupMonitor.deadLettersLabel, [("partition", tag)]).lastValue == 1)
        }
    }
}

/// A flag one task clears and others watch (an `Atomic` cannot be captured by task-group children).
private final class Flag: Sendable {
    private let state: Atomic<Bool>
    init(_ value: Bool) { state = Atomic(value) }
    var isSet: Bool { state.load(ordering: .acquiring) }
    func clear() { state.store(false, ordering: .releasing) }
}
