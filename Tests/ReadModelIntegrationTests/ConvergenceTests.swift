import EventStore
import ReadModel
import RedisClient
import Synchronization
import Testing
import ThreadDomain

/// DESIGN §3's one invariant: whatever the delivery order, repeats and crash
/// points, the read model equals what a full replay (`rebuild`) builds.
@Suite("Convergence")
struct ConvergenceTests {
    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
    func shuffledDuplicatedAndCrashingDeliveriesConvergeToTheRebuild(seed: UInt64) async throws {
        try await withFixture(partitions: 4) { fixture in
            var writer = HistoryWriter(store: fixture.store, seed: seed)
            var threads: [ThreadID] = []
            for _ in 0..<6 { threads.append(try await writer.createThread()) }
            for _ in 0..<120 {
                try await writer.randomCommand(on: threads.randomElement(using: &writer.generator)!)
            }
            try await expectConvergence(fixture, writer: writer, threads: threads, seed: seed)
        }
    }

    /// DESIGN §3's cost bound lets a thread have thousands of participants: the
    /// same invariant over threads whose every join or leave names hundreds of
    /// accounts (a message then owes the account index nothing).
    @Test(arguments: [21, 22] as [UInt64])
    func bigThreadsConvergeToTheRebuildUnderConcurrentWorkersAndCrashes(seed: UInt64) async throws {
        try await withFixture(partitions: 4) { fixture in
            var writer = HistoryWriter(store: fixture.store, seed: seed, accountCount: 1_500)
            var threads: [ThreadID] = []
            for _ in 0..<2 { threads.append(try await writer.createThread()) }
            for _ in 0..<60 {
                try await writer.randomCommand(on: threads.randomElement(using: &writer.generator)!, allowDestroy: false)
            }
            let participants = threads.map { writer.states[$0].map { $0.administratorIds.count + $0.memberIds.count } ?? 0 }
            #expect(participants.allSatisfy { $0 >= 500 }, "threads of \(participants) participants are not big")
            try await expectConvergence(fixture, writer: writer, threads: threads, seed: seed)
        }
    }

    /// Delivers the change log shuffled, ~40% twice, with crash points and two
    /// concurrent workers, then compares the read model with a rebuild and with the domain.
    func expectConvergence(_ fixture: Fixture, writer: HistoryWriter, threads: [ThreadID], seed: UInt64) async throws {
        // Deliveries: every entry at least once, ~40% twice, all shuffled.
        var generator = SeededGenerator(seed: seed &* 7919)
        let entries = try await changeLogEntries(fixture)
        var deliveries = entries
        deliveries += entries.filter { _ in Int.random(in: 0..<10, using: &generator) < 4 }
        deliveries.shuffle(using: &generator)

        // Crash points: some deliveries reach the thread's hash and stop
        // before the account index (a worker killed mid-apply); the
        // entry, not acked, is delivered again later in the sequence.
        let projector = fixture.projector
        let ownConnectionHandle = try await fixture.pool.dedicatedConnection()
        let ownConnection = ownConnectionHandle.connection
        var index = 0
        while index < deliveries.count {
            let size = Int.random(in: 1...12, using: &generator)
            let batch = Array(deliveries[index..<min(index + size, deliveries.count)])
            index += size
            if Int.random(in: 0..<5, using: &generator) == 0, let victim = batch.first {
                try await applyWithoutAccountIndex(victim.event, of: victim.threadId, fixture: fixture)
                deliveries.append(victim)
            }
            // Two workers at once: the batch split between concurrent projections,
            // one sending its first round on a connection of its own as the worker does.
            let half = batch.count / 2
            async let first = projector.apply(Array(batch[..<half]), firstRoundOn: [ownConnection])
            async let second = projector.apply(Array(batch[half...]))
            for result in Array((await first).values) + Array((await second).values) { _ = try result.get() }
        }
        ownConnectionHandle.release()

        let projected = try await dumpReadModel(fixture)
        let reported = Mutex<[ReadModelRebuilder.Progress]>([])
        let report = try await fixture.rebuilder.rebuild { progress in reported.withLock { $0.append(progress) } }
        let rebuilt = try await dumpReadModel(fixture)

        #expect(report.threads == threads.count)
        #expect(report.events == entries.count)
        let last = try #require(reported.withLock { $0.last }, "a rebuild reports its progress at the end")
        #expect(last.events == report.events && last.threads == report.threads)
        #expect(last.totalEvents == entries.count, "the total is counted before the replay")
        #expect(projected == rebuilt, "seed \(seed): projected and rebuilt read models differ")
        try await expectMatchesDomain(writer.states, fixture: fixture)
    }

    /// Calls `tw_rm_apply` alone: the thread's keys are written, the account
    /// operations it owes are left in the outbox.
    func applyWithoutAccountIndex(_ event: StoredEvent, of threadId: ThreadID, fixture: Fixture) async throws {
        let layout = fixture.layout
        _ = try await fixture.pool.send(
            RedisCommand(
                "FCALL", "tw_rm_apply", "6", layout.threadView(threadId), layout.administratorsView(threadId),
                layout.membersView(threadId), layout.messagesView(threadId), layout.timelineView(threadId),
                layout.accountOutbox(threadId), threadId.rawValue, String(event.version), event.typeName,
                String(event.at), event.actor.rawValue, event.data, "0"))
    }

    /// The read model against the domain's own state of each thread.
    func expectMatchesDomain(_ states: [ThreadID: ThreadState], fixture: Fixture) async throws {
        let reader = fixture.reader
        for (threadId, state) in states {
            let creator = state.creatorId
            let view = try #require(try await reader.access(threadId, for: creator).thread)
            #expect(view.version == state.version)
            #expect(view.administratorCount == state.administratorIds.count)
            #expect(view.memberCount == state.memberIds.count)
            #expect(view.messageCount == state.messages.values.filter { !$0.removed }.count)
            #expect(view.isDestroyed == state.isDestroyed)
            #expect(Set(try await reader.administrators(of: threadId).map(\.accountId)) == Set(state.administratorIds))
            #expect(Set(try await reader.members(of: threadId).map(\.accountId)) == Set(state.memberIds))
            let live = try await reader.messages(of: threadId, after: nil, limit: 10_000)
            #expect(Set(live.messages.map(\.id)) == Set(state.messages.filter { !$0.value.removed }.keys))

            for account in Set(state.administratorIds + state.memberIds + [creator]) {
                let listed = try await reader.threads(of: account, asOf: .max, after: nil, limit: 1000).threads.map(\.thread.id)
                let shouldList = !state.isDestroyed && state.isParticipant(account)
                #expect(listed.contains(threadId) == shouldList, "account \(account) listing of \(threadId)")
            }
            let outbox = try await fixture.send("EXISTS", fixture.layout.accountOutbox(threadId))
            #expect(outbox.int == 0, "outbox of \(threadId) settled")
        }
    }
}
