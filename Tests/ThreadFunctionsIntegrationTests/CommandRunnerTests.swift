import EventStore
import Foundation
import RedisClient
import StoreTestSupport
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
            #expect(acknowledged.count >= 40, "bounded retries still get most writers in")
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

    @Test("snapshots are written as versions cross the interval", arguments: StoreKind.allCases)
    func snapshots(kind: StoreKind) async throws {
        try await withStore(kind) { store, _, _ in
            var configuration = CommandRunner.Configuration()
            configuration.snapshotInterval = 3
            let runner = CommandRunner(store: store, configuration: configuration, logger: testLogger)
            let threadId = ThreadID.generate()
            _ = try await store.append(appendRequest(threadId, expected: 0, [createThread(threadId)]))
            for _ in 0..<4 {
                _ = try await runner.run(
                    CommandRequest(threadId: threadId, command: .addMessages([NewMessage(id: .generate(), text: "x", replyTo: nil, mentions: [])]), actor: bob))
            }
            let loaded = try await store.load(threadId, since: nil, messageIds: [], commandId: nil)
            #expect(loaded.state?.version == 5)
            #expect(loaded.eventsReplayed == 2, "the snapshot at version 3 serves the load")
        }
    }

    @Test("retries that run out answer conflict, and what was acknowledged is exactly what was written")
    func retriesRunOut() async throws {
        try await withStore(.redis) { store, _, _ in
            var configuration = CommandRunner.Configuration()
            configuration.maximumAttempts = 1
            let runner = CommandRunner(store: store, configuration: configuration, logger: testLogger)
            let threadId = ThreadID.generate()
            let writers = (0..<40).map { _ in AccountID.generate() }
            _ = try await runner.run(CommandRequest(threadId: threadId, command: .createThread(
                CreateThread(threadId: threadId, creatorId: alice, title: "contended", memberIds: writers)), actor: alice))

            // Forty writers, one attempt each, on one thread: all but the fastest find the version moved.
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for writer in writers {
                    group.addTask {
                        do {
                            _ = try await runner.run(CommandRequest(
                                threadId: threadId, command: .addMessages([NewMessage(id: .generate(), text: "hi")]), actor: writer))
                            return true
                        } catch let error as FunctionError where error.code == .conflict {
                            return false
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            let acknowledged = outcomes.filter { $0 }.count
            #expect(acknowledged < writers.count, "some writer ran out of its single attempt")
            #expect(acknowledged >= 1)
            #expect(try await store.events(of: threadId, after: 0, limit: 1_000).count == 1 + acknowledged)
        }
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
}
