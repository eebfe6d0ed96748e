import EventStore
import Foundation
import RedisClient
import StoreTestSupport
import Synchronization
import Testing
import ThreadDomain
import ThreadFunctions

@Suite("Command runner")
struct CommandRunnerTests {
    @Test("50 concurrent writers on one thread leave versions 1…N, each acknowledged command exactly once")
    func concurrentWriters() async throws {
        try await withStore(.redis) { store, layout, pool in
            let runner = CommandRunner(store: store, logger: testLogger)
            let threadId = ThreadID.generate()
            let writers = (0..<50).map { _ in AccountID.generate() }
            _ = try await runner.run(
                CommandRequest(threadId: threadId, command: .createThread(
                    CreateThread(threadId: threadId, creatorId: alice, parentThreadId: nil, title: "load",
                                 remarks: nil, administratorIds: [], memberIds: writers)), actor: alice))

            let acknowledged = try await withThrowingTaskGroup(of: MessageID?.self) { group in
                for writer in writers {
                    group.addTask {
                        let id = MessageID.generate()
                        let request = CommandRequest(
                            threadId: threadId,
                            command: .addMessages([NewMessage(id: id, text: "from \(writer)", replyTo: nil, mentions: [])]),
                            actor: writer)
                        do {
                            _ = try await runner.run(request)
                            return id
                        } catch let error as FunctionError where error.code == .conflict {
                            return nil
                        }
                    }
                }
                return try await group.reduce(into: [MessageID]()) { if let id = $1 { $0.append(id) } }
            }

            let events = try await store.events(of: threadId, after: 0, limit: 10_000)
            #expect(events.map(\.version) == Array(1...Int64(events.count)))
            let added = events.flatMap { event -> [MessageID] in
                if case .messagesAdded(let messages) = event.event { return messages.map(\.id) }
                return []
            }
            #expect(Set(added).count == added.count, "no message appended twice")
            #expect(Set(added) == Set(acknowledged), "every acknowledged command is present, nothing else")
            #expect(acknowledged.count == writers.count, "group commit: the writers of one process never conflict with each other")
            let logLength = try await #require(pool).send(RedisCommand("XLEN", layout.changeLog(of: threadId))).int
            #expect(logLength == events.count, "one change-log entry per event")
        }
    }

    @Test("a rule violation is reported with the domain's code and writes nothing", arguments: StoreKind.allCases)
    func ruleViolation(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            let runner = CommandRunner(store: store, logger: testLogger)
            let threadId = ThreadID.generate()
            await #expect {
                _ = try await runner.run(CommandRequest(threadId: threadId, command: .destroyThread, actor: alice))
            } throws: { error in
                (error as? FunctionError)?.code == .threadNotFound
            }
            let events = try await store.events(of: threadId, after: 0, limit: 10)
            #expect(events.isEmpty)
        }
    }

    @Test("a no-op command appends nothing and answers the unchanged version", arguments: StoreKind.allCases)
    func noOp(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            let runner = CommandRunner(store: store, logger: testLogger)
            let threadId = ThreadID.generate()
            _ = try await store.append(appendRequest(threadId, expected: 0, [createThread(threadId)]))
            let outcome = try await runner.run(CommandRequest(threadId: threadId, command: .joinMembers([bob]), actor: alice))
            #expect(outcome.version == 1)
            #expect(outcome.events.isEmpty)
        }
    }

    @Test("a retried create with the same key returns the first outcome", arguments: StoreKind.allCases)
    func idempotentCreate(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            let runner = CommandRunner(store: store, logger: testLogger)
            let threadId = ThreadID.generate()
            let request = CommandRequest(
                threadId: threadId,
                command: .createThread(CreateThread(threadId: threadId, creatorId: alice, parentThreadId: nil,
                                                    title: "t", remarks: nil, administratorIds: [], memberIds: [])),
                actor: alice, idempotencyKey: "key-\(threadId)", fingerprint: "fp", result: "first")
            let first = try await runner.run(request)
            let retry = try await runner.run(request)
            #expect(first.version == 1 && first.isReplay == false)
            #expect(retry.version == 1 && retry.isReplay && retry.result == "first")
            #expect(try await store.events(of: threadId, after: 0, limit: 10).count == 1)

            var reused = request
            reused.fingerprint = "other"
            await #expect {
                _ = try await runner.run(reused)
            } throws: { error in
                (error as? FunctionError)?.code == .idempotencyKeyReused
            }
        }
    }

    /// A snapshot holds every participant, so a big thread's are further
    /// apart: with an interval of 3, a thread of 2 participants is snapshotted
    /// at version 3, one of 401 at version 401 / 8 = 50.
    struct SnapshotCase: Sendable, CustomTestStringConvertible {
        var otherMembers: Int
        var posts: Int
        var snapshotVersion: Int64
        var testDescription: String { "\(otherMembers + 2) participants, \(posts) posts" }
    }

    @Test(
        "snapshots are written as versions cross the interval, which grows with the participants",
        arguments: StoreKind.allCases,
        [SnapshotCase(otherMembers: 0, posts: 4, snapshotVersion: 3), SnapshotCase(otherMembers: 399, posts: 51, snapshotVersion: 50)])
    func snapshots(kind: StoreKind, snapshotCase: SnapshotCase) async throws {
        try await withStore(kind) { store, _, _ in
            var configuration = CommandRunner.Configuration()
            configuration.snapshotInterval = 3
            let runner = CommandRunner(store: store, configuration: configuration, logger: testLogger)
            let threadId = ThreadID.generate()
            let members = (0..<snapshotCase.otherMembers).map { _ in AccountID.generate() }
            _ = try await store.append(appendRequest(threadId, expected: 0, [createThread(threadId, members: members + [bob])]))
            for _ in 0..<snapshotCase.posts {
                _ = try await runner.run(
                    CommandRequest(threadId: threadId, command: .addMessages([NewMessage(id: .generate(), text: "x", replyTo: nil, mentions: [])]), actor: bob))
            }
            let loaded = try await store.load(threadId, since: nil, messageIds: [], commandId: nil)
            let version = Int64(1 + snapshotCase.posts)
            #expect(loaded.state?.version == version)
            #expect(loaded.eventsReplayed == Int(version - snapshotCase.snapshotVersion), "the snapshot serves the load")
        }
    }

    @Test("retries that run out answer conflict for the whole batch, and nothing of it is written")
    func retriesRunOut() async throws {
        let base = InMemoryEventStore()
        let interloper = AccountID.generate()
        var configuration = CommandRunner.Configuration()
        configuration.maximumAttempts = 3
        configuration.maximumBackoff = .milliseconds(2)
        let runner = CommandRunner(
            store: InterferingStore(base: base, interloper: interloper), configuration: configuration, logger: testLogger)
        let threadId = ThreadID.generate()
        let writers = (0..<10).map { _ in AccountID.generate() }
        _ = try await base.append(appendRequest(threadId, expected: 0, [createThread(threadId, members: writers + [interloper])]))

        // Another writer gets in before every append: each round conflicts.
        let codes = await messageFromEach(of: writers, on: threadId, through: runner)
        #expect(codes == [ErrorCode?](repeating: .conflict, count: writers.count))
        let events = try await base.events(of: threadId, after: 0, limit: 1_000)
        #expect(events.map(\.version) == Array(1...Int64(events.count)))
        #expect(events.dropFirst().allSatisfy { $0.actor == interloper }, "only the interloper's joins are in")
    }

    /// Posts commute: one decided before another process's post goes in after
    /// it, at the first attempt, and the runner loads on from a true state.
    @Test("a post decided before another process's post lands after it at the first attempt", arguments: StoreKind.allCases)
    func postsLandAfterPosts(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            let interloper = AccountID.generate()
            let runner = CommandRunner(
                store: interferingStore(over: store, interloper: interloper) { .messagesAdded([message(from: $0)]) }, logger: testLogger)
            let threadId = ThreadID.generate()
            _ = try await store.append(appendRequest(threadId, expected: 0, [createThread(threadId, members: [bob, interloper])]))
            for round in Int64(1)...3 {
                let outcome = try await runner.run(
                    CommandRequest(threadId: threadId, command: .addMessages([NewMessage(id: .generate(), text: "post \(round)")]), actor: bob))
                #expect(outcome.attempts == 1)
                #expect(outcome.version == 1 + 2 * round, "after the interloper's post")
                #expect(outcome.events.map(\.version) == [outcome.version])
            }
            let events = try await store.events(of: threadId, after: 0, limit: 100)
            #expect(events.map(\.actor) == [alice, interloper, bob, interloper, bob, interloper, bob])
            #expect(events.map(\.version) == Array(1...7))
        }
    }

    @Test("concurrent commands on one thread write exactly what a serial run in stream order accepts", arguments: StoreKind.allCases)
    func groupCommitIsSerializable(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            // Two processes: batches of one land after the other's posts, or conflict.
            let runners = [CommandRunner(store: store, logger: testLogger), CommandRunner(store: store, logger: testLogger)]
            let threadId = ThreadID.generate()
            let admin = AccountID.generate()
            let people = (0..<4).map { _ in AccountID.generate() }
            let messageIds = (0..<8).map { _ in MessageID.generate() }
            _ = try await runners[0].run(CommandRequest(threadId: threadId, command: .createThread(
                CreateThread(threadId: threadId, creatorId: admin, title: "hot", memberIds: Array(people.prefix(2)))), actor: admin))

            // A small world, so the commands clash: the same message added twice, replies and
            // removals of messages that may not exist yet, members leaving before they write.
            var generator = SystemRandomNumberGenerator()
            let requests: [CommandRequest] = (0..<80).map { index in
                let actor = ([admin] + people).randomElement(using: &generator)!
                let command: ThreadCommand
                switch Int.random(in: 0..<8, using: &generator) {
                case 0: command = .joinMembers([people.randomElement(using: &generator)!])
                case 1: command = .leaveMembers([people.randomElement(using: &generator)!])
                case 2: command = .removeMessages([messageIds.randomElement(using: &generator)!])
                default:
                    command = .addMessages([NewMessage(
                        id: messageIds.randomElement(using: &generator)!, text: "m\(index)",
                        replyTo: Bool.random(using: &generator) ? messageIds.randomElement(using: &generator) : nil)])
                }
                // The key names the command on its events.
                return CommandRequest(threadId: threadId, command: command, actor: actor, idempotencyKey: "cmd-\(index)-\(threadId)")
            }
            let answers = await withTaskGroup(of: (Int, Result<CommandOutcome, FunctionError>).self) { group in
                for (index, request) in requests.enumerated() {
                    let runner = runners[index % 2]
                    group.addTask {
                        do throws(FunctionError) { return (index, .success(try await runner.run(request))) } catch { return (index, .failure(error)) }
                    }
                }
                return await group.reduce(into: [Int: Result<CommandOutcome, FunctionError>]()) { $0[$1.0] = $1.1 }
            }

            let events = try await store.events(of: threadId, after: 0, limit: 10_000)
            #expect(events.map(\.version) == Array(1...Int64(events.count)), "contiguous versions")
            let index = Dictionary(uniqueKeysWithValues: requests.enumerated().map { ($1.idempotencyKey!, $0) })
            // Replay serially in stream order: each command's events are what the domain decides at that point.
            var state = ThreadDecider.replay(events.prefix(1))
            var prefixStates = [state]
            var position = 1
            var written: Set<Int> = []
            while position < events.count {
                let commandId = events[position].commandId
                let number = try #require(index[commandId])
                let recorded = events[position...].prefix { $0.commandId == commandId }
                let decided = try ThreadDecider.decide(state, requests[number].command, actor: requests[number].actor)
                #expect(decided == recorded.map(\.event), "command \(number) wrote what the domain decides at its place")
                #expect(try answers[number]?.get().version == recorded.last?.version, "its caller got its own version")
                state = ThreadDecider.replay(recorded, from: state)
                prefixStates.append(state)
                written.insert(number)
                position += recorded.count
            }
            for (number, answer) in answers where !written.contains(number) {
                switch answer {
                case .success(let outcome):
                    #expect(outcome.events.isEmpty, "a command that wrote nothing answered a no-op")
                case .failure(let error):
                    // Refused for a reason the serial domain gives at some point of the stream.
                    let reasons = prefixStates.compactMap { prefix -> ErrorCode? in
                        do throws(DomainError) {
                            _ = try ThreadDecider.decide(prefix, requests[number].command, actor: requests[number].actor)
                            return nil
                        } catch {
                            return error.code
                        }
                    }
                    #expect(reasons.contains(error.code), "command \(number) refused with \(error.code), serially possible: \(reasons)")
                }
            }
            #expect(answers.count == requests.count)
        }
    }

    @Test("two processes of 32 writers each on one thread: every command in at its first attempt")
    func twoProcessesOnOneThread() async throws {
        try await withStore(.redis) { store, _, _ in
            let processes = [CommandRunner(store: store, logger: testLogger), CommandRunner(store: store, logger: testLogger)]
            let threadId = ThreadID.generate()
            let writers = (0..<64).map { _ in AccountID.generate() }
            _ = try await processes[0].run(CommandRequest(threadId: threadId, command: .createThread(
                CreateThread(threadId: threadId, creatorId: alice, title: "hot", memberIds: writers)), actor: alice))
            let failures = try await withThrowingTaskGroup(of: Int.self) { group in
                for (number, writer) in writers.enumerated() {
                    let runner = processes[number % 2]
                    group.addTask {
                        var failedOrRetried = 0
                        for _ in 0..<10 {
                            do {
                                let outcome = try await runner.run(CommandRequest(
                                    threadId: threadId, command: .addMessages([NewMessage(id: .generate(), text: "hi")]), actor: writer))
                                if outcome.attempts > 1 { failedOrRetried += 1 }
                            } catch {
                                failedOrRetried += 1
                            }
                        }
                        return failedOrRetried
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(failures == 0)
            let events = try await store.events(of: threadId, after: 0, limit: 10_000)
            #expect(events.count == 1 + 640)
            #expect(events.map(\.version) == Array(1...Int64(events.count)))
        }
    }

    @Test("commands queued behind a stalled append answer unavailable at their wait limit and write nothing")
    func queuedCommandsDoNotWaitPastTheirLimit() async throws {
        let base = InMemoryEventStore()
        let stalled = InstrumentedStore(base: base, stall: .firstAppend)
        var configuration = CommandRunner.Configuration()
        configuration.queueWaitLimit = .milliseconds(300)
        let runner = CommandRunner(store: stalled, configuration: configuration, logger: testLogger)
        let threadId = ThreadID.generate()
        let writers = (0..<8).map { _ in AccountID.generate() }
        _ = try await base.append(appendRequest(threadId, expected: 0, [createThread(threadId, members: writers)]))

        let started = ContinuousClock.now
        let results = await withTaskGroup(of: (ErrorCode?, Duration).self) { group in
            for writer in writers {
                group.addTask {
                    let code: ErrorCode?
                    do throws(FunctionError) {
                        _ = try await runner.run(CommandRequest(
                            threadId: threadId, command: .addMessages([NewMessage(id: .generate(), text: "hi")]), actor: writer))
                        code = nil
                    } catch {
                        code = error.code
                    }
                    return (code, ContinuousClock.now - started)
                }
                try? await Task.sleep(for: .milliseconds(5))
            }
            // The first append hangs for 2 s (a frozen Redis, until its command timeout).
            return await group.reduce(into: [(ErrorCode?, Duration)]()) { $0.append($1) }
        }
        let queued = results.filter { $0.1 < .seconds(1) }
        #expect(queued.count == writers.count - 1, "all but the stalled head answered long before it: \(results)")
        #expect(queued.allSatisfy { $0.0 == .unavailable })
        #expect(try await base.events(of: threadId, after: 0, limit: 100).count == 2, "only the head's message is in")
    }

    @Test("an append that fails takes the commands queued behind it down at once")
    func queuedCommandsFailWithTheirHead() async throws {
        let failing = InstrumentedStore(
            base: InMemoryEventStore(), stall: .everyAppend(failingWith: EventStoreError(.unavailable, "Redis is unavailable")))
        let runner = CommandRunner(store: failing, logger: testLogger)
        let threadId = ThreadID.generate()
        let writers = (0..<8).map { _ in AccountID.generate() }
        _ = try await failing.base.append(appendRequest(threadId, expected: 0, [createThread(threadId, members: writers)]))
        let started = ContinuousClock.now
        let codes = await messageFromEach(of: writers, on: threadId, through: runner)
        #expect(codes == [ErrorCode?](repeating: .unavailable, count: writers.count))
        #expect(ContinuousClock.now - started < .seconds(2), "one stalled append (1 s), not one per queued command")
    }

    @Test("concurrent runs with one idempotency key append once and all answer the first outcome")
    func idempotencyRace() async throws {
        try await withStore(.redis) { store, _, _ in
            let runner = CommandRunner(store: store, logger: testLogger)
            let threadId = ThreadID.generate()
            _ = try await store.append(appendRequest(threadId, expected: 0, [createThread(threadId)]))
            let request = CommandRequest(
                threadId: threadId, command: .addMessages([NewMessage(id: .generate(), text: "once")]), actor: bob,
                idempotencyKey: "race-\(threadId)", fingerprint: "fp", result: "first")
            let outcomes = try await withThrowingTaskGroup(of: CommandOutcome.self) { group in
                for _ in 0..<20 { group.addTask { try await runner.run(request) } }
                return try await group.reduce(into: [CommandOutcome]()) { $0.append($1) }
            }
            #expect(outcomes.allSatisfy { $0.version == 2 })
            #expect(outcomes.filter { !$0.isReplay }.count == 1, "exactly one run appended")
            #expect(try await store.events(of: threadId, after: 0, limit: 10).count == 2)
        }
    }

    @Test("a reply to and a removal of a message added before the snapshot", arguments: StoreKind.allCases)
    func messagesBeforeTheSnapshot(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            var configuration = CommandRunner.Configuration()
            configuration.snapshotInterval = 2
            let runner = CommandRunner(store: store, configuration: configuration, logger: testLogger)
            let threadId = ThreadID.generate()
            let early = MessageID.generate()
            _ = try await store.append(appendRequest(threadId, expected: 0, [createThread(threadId)]))
            _ = try await runner.run(CommandRequest(threadId: threadId, command: .addMessages([NewMessage(id: early, text: "early")]), actor: bob))
            for _ in 0..<4 {
                _ = try await runner.run(CommandRequest(threadId: threadId, command: .addMessages([NewMessage(id: .generate(), text: "x")]), actor: alice))
            }
            let loaded = try await store.load(threadId, since: nil, messageIds: [], commandId: nil)
            #expect(loaded.eventsReplayed <= 1, "the load starts from a snapshot taken after the early message")

            let reply = try await runner.run(CommandRequest(
                threadId: threadId, command: .addMessages([NewMessage(id: .generate(), text: "re", replyTo: early)]), actor: alice))
            #expect(reply.version == 7)
            let removal = try await runner.run(CommandRequest(threadId: threadId, command: .removeMessages([early]), actor: bob))
            #expect(removal.version == 8)
            await #expect {
                _ = try await runner.run(CommandRequest(threadId: threadId, command: .removeMessages([early]), actor: bob))
            } throws: { error in
                (error as? FunctionError)?.code == .messageNotFound
            }
        }
    }

    @Test("a process's cached state of a thread never decides against what the stream holds")
    func cachedStateFollowsTheStream() async throws {
        try await withStore(.redis) { store, layout, pool in
            let pool = try #require(pool)
            let first = CommandRunner(store: store, logger: testLogger)
            let second = CommandRunner(store: store, logger: testLogger)
            let threadId = ThreadID.generate()
            let carol = AccountID.generate()
            _ = try await first.run(CommandRequest(
                threadId: threadId, command: .createThread(CreateThread(threadId: threadId, creatorId: alice, title: "v1")), actor: alice))
            // Another process moves the thread on: the first one's cache is behind, and catches up on load.
            _ = try await second.run(CommandRequest(threadId: threadId, command: .joinMembers([carol]), actor: alice))
            let byCarol = try await first.run(CommandRequest(
                threadId: threadId, command: .addMessages([NewMessage(id: .generate(), text: "hi")]), actor: carol))
            #expect(byCarol.version == 3)

            // The stream is dropped and the thread created anew, with dave instead of carol: the first
            // process's cached state (version 3, carol a member, dave not) is newer than the stream, so
            // it is no base. A refusal decided on it would write nothing and so never be corrected.
            let dave = AccountID.generate()
            _ = try await pool.send(RedisCommand("UNLINK", layout.threadStream(threadId), layout.snapshot(threadId)))
            _ = try await second.run(CommandRequest(
                threadId: threadId,
                command: .createThread(CreateThread(threadId: threadId, creatorId: alice, title: "anew", memberIds: [dave])),
                actor: alice))
            let byDave = try await first.run(CommandRequest(
                threadId: threadId, command: .addMessages([NewMessage(id: .generate(), text: "new here")]), actor: dave))
            #expect(byDave.version == 2)
            await #expect(throws: FunctionError.self, "carol is not a participant of the new thread") {
                _ = try await first.run(CommandRequest(
                    threadId: threadId, command: .addMessages([NewMessage(id: .generate(), text: "still here?")]), actor: carol))
            }
            let byAlice = try await first.run(CommandRequest(
                threadId: threadId, command: .addMessages([NewMessage(id: .generate(), text: "hello again")]), actor: alice))
            #expect(byAlice.version == 3)
        }
    }

    @Test("posts to a thread the process holds are decided without a load; the append confirms them, a refusal is loaded first", arguments: StoreKind.allCases)
    func postsDecidedOnTheHeldState(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            let counted = InstrumentedStore(base: store)
            let runner = CommandRunner(store: counted, logger: testLogger)
            let otherProcess = CommandRunner(store: store, logger: testLogger)
            let threadId = ThreadID.generate()
            func post(_ id: MessageID = .generate(), by actor: AccountID = alice, through runner: CommandRunner) async throws(FunctionError) -> Int64 {
                try await runner.run(CommandRequest(
                    threadId: threadId, command: .addMessages([NewMessage(id: id, text: "hi")]), actor: actor)).version
            }
            _ = try await runner.run(CommandRequest(
                threadId: threadId, command: .createThread(CreateThread(threadId: threadId, creatorId: alice, title: "held")), actor: alice))
            var loads = counted.loads
            #expect(try await post(through: runner) == 2)
            #expect(try await post(through: runner) == 3)
            #expect(counted.loads == loads, "posts on the held state: no load")

            // An id already taken: the append refuses the held decision, a load decides the refusal.
            let taken = MessageID.generate()
            #expect(try await post(taken, through: runner) == 4)
            loads = counted.loads
            let duplicate = await #expect(throws: FunctionError.self) { _ = try await post(taken, through: runner) }
            #expect(duplicate?.code == .messageExists)
            #expect(counted.loads == loads + 1)

            // Carol joined through another process: refused on the held state, accepted once loaded.
            let carol = AccountID.generate()
            _ = try await otherProcess.run(CommandRequest(threadId: threadId, command: .joinMembers([carol]), actor: alice))
            loads = counted.loads
            #expect(try await post(by: carol, through: runner) == 6)
            #expect(counted.loads == loads + 1)
            // Dave never joined: the refusal stands after the load.
            let stranger = await #expect(throws: FunctionError.self) { _ = try await post(by: .generate(), through: runner) }
            #expect(stranger?.code == .notParticipant)

            // Posts of another process in between: this one's post lands after them, and its
            // state is then known to be behind, so the next post loads what it missed.
            #expect(try await post(through: otherProcess) == 7)
            #expect(try await post(through: runner) == 8)
            loads = counted.loads
            #expect(try await post(through: runner) == 9)
            #expect(counted.loads == loads + 1)
            #expect(try await post(through: runner) == 10)
            #expect(counted.loads == loads + 1, "current again after the load")
            let versions = try await store.events(of: threadId, after: 0, limit: 100).map(\.version)
            #expect(versions == Array(1...10))
        }
    }
}

/// A store over another that counts its loads and, when asked, stalls its
/// appends: the first one 2 s before it goes in (as against a frozen Redis
/// until the command timeout), or, with `failure`, every one 1 s before it
/// fails with that.
private final class InstrumentedStore: EventStore {
    enum Stall: Sendable {
        case never, firstAppend
        case everyAppend(failingWith: EventStoreError)
    }

    let base: any EventStore
    let stall: Stall
    private let counts = Mutex((loads: 0, appends: 0))

    init(base: any EventStore, stall: Stall = .never) {
        self.base = base
        self.stall = stall
    }

    var loads: Int { counts.withLock { $0.loads } }

    func load(
        _ threadId: ThreadID, since base: ThreadState?, messageIds: [MessageID], commandId: String?
    ) async throws(EventStoreError) -> LoadedThread {
        counts.withLock { $0.loads += 1 }
        return try await self.base.load(threadId, since: base, messageIds: messageIds, commandId: commandId)
    }

    func append(_ request: AppendRequest) async throws(EventStoreError) -> AppendOutcome {
        let number = counts.withLock { counts in
            counts.appends += 1
            return counts.appends
        }
        switch stall {
        case .never:
            break
        case .firstAppend:
            if number == 1 { try? await Task.sleep(for: .seconds(2)) }
        case .everyAppend(let failure):
            try? await Task.sleep(for: .seconds(1))
            throw failure
        }
        return try await base.append(request)
    }

    func events(of threadId: ThreadID, after version: Int64, limit: Int) async throws(EventStoreError) -> [RecordedEvent] {
        try await base.events(of: threadId, after: version, limit: limit)
    }
}

/// Every writer sends one message at the same time; each answer's error code, nil when it went in.
private func messageFromEach(of writers: [AccountID], on threadId: ThreadID, through runner: CommandRunner) async -> [ErrorCode?] {
    await withTaskGroup(of: ErrorCode?.self) { group in
        for writer in writers {
            group.addTask {
                do throws(FunctionError) {
                    _ = try await runner.run(CommandRequest(
                        threadId: threadId, command: .addMessages([NewMessage(id: .generate(), text: "hi")]), actor: writer))
                    return nil
                } catch {
                    return error.code
                }
            }
        }
        return await group.reduce(into: [ErrorCode?]()) { $0.append($1) }
    }
}
