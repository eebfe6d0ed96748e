import EventStore
import RedisClient
import RedisTestSupport
import StoreTestSupport
import Testing
import ThreadDomain

@Suite("Redis layout and library")
struct RedisLayoutTests {
    @Test("FNV-1a matches the published test vectors")
    func fnvVectors() {
        #expect(fnv1a32("".utf8) == 0x811c_9dc5)
        #expect(fnv1a32("a".utf8) == 0xe40c_292c)
        #expect(fnv1a32("foobar".utf8) == 0xbf9c_f968)
    }

    /// Literal names, not the code's formula again: a change to the layout
    /// (which would strand every stored key) must fail here.
    @Test("keys follow DESIGN §2 with a two-digit partition tag")
    func keyNames() throws {
        let layout = KeyLayout(namespace: "tw", partitionCount: 64)
        let threadId = try #require(ThreadID("01HZY8Q7K3M4N5P6Q7R8S9T0VW"))
        // fnv1a32("01HZY8Q7K3M4N5P6Q7R8S9T0VW") mod 64 = 16
        #expect(layout.partition(of: threadId) == 16)
        #expect(layout.threadStream(threadId) == "tw:{p16}:thread:01HZY8Q7K3M4N5P6Q7R8S9T0VW")
        #expect(layout.changeLog(of: threadId) == "tw:{p16}:log")
        #expect(layout.snapshot(threadId) == "tw:{p16}:snap:01HZY8Q7K3M4N5P6Q7R8S9T0VW")
        #expect(layout.messageIndex(threadId) == "tw:{p16}:msgidx:01HZY8Q7K3M4N5P6Q7R8S9T0VW")
        #expect(layout.idempotencyRecord(threadId, commandId: "k1") == "tw:{p16}:idem:01HZY8Q7K3M4N5P6Q7R8S9T0VW:k1")
        #expect(layout.activityIndex(of: threadId) == "tw:{p16}:activity")
        let account = try #require(AccountID("01HZY8Q7K3M4N5P6Q7R8S9T0VX"))
        #expect(
            layout.createReservation(account: account, idempotencyKey: "k1")
                == "tw:{acct:01HZY8Q7K3M4N5P6Q7R8S9T0VX}:create:k1")
        #expect(layout.deadLetters(partition: 16) == "tw:{p16}:dead")
        #expect(layout.config == "tw:config")
        #expect(layout.hashTag(partition: 7) == "{p07}")
        #expect(layout.threadView(threadId) == "tw:{p16}:rm:thread:01HZY8Q7K3M4N5P6Q7R8S9T0VW")
        #expect(layout.membersView(threadId) == "tw:{p16}:rm:thread:01HZY8Q7K3M4N5P6Q7R8S9T0VW:members")
        #expect(layout.accountThreads(threadId) == "tw:{acct:01HZY8Q7K3M4N5P6Q7R8S9T0VW}:threads")
        #expect(layout.accountThreadVersions(threadId) == "tw:{acct:01HZY8Q7K3M4N5P6Q7R8S9T0VW}:threads:versions")
    }

    @Test("entries are readable with plain redis commands: IDs are versions, fields are text")
    func readableEntries() async throws {
        try await withStore(.redis) { store, layout, pool in
            let pool = try #require(pool)
            let threadId = ThreadID.generate()
            _ = try await store.append(appendRequest(threadId, expected: 0, [createThread(threadId), .threadDestroyed]))

            let entries = try #require(try await pool.send(RedisCommand("XRANGE", layout.threadStream(threadId), "-", "+")).array)
            #expect(entries.compactMap { $0.array?.first?.string } == ["1-0", "2-0"])
            let fields = try #require(entries.first?.array?.last?.array).compactMap(\.string)
            #expect(fields.enumerated().filter { $0.offset % 2 == 0 }.map(\.element) == ["type", "at", "actor", "cmd", "data"])
            #expect(fields[1] == "ThreadCreated")
            #expect(fields[9].contains(#""title":"Weekly sync""#))

            let log = try #require(try await pool.send(RedisCommand("XRANGE", layout.changeLog(of: threadId), "-", "+")).array)
            let logFields = log.compactMap { $0.array?.last?.array?.compactMap(\.string) }
                .filter { $0.count > 1 && $0[1] == threadId.rawValue }
            #expect(logFields.map { $0[3] } == ["1", "2"])
            #expect(logFields.map { $0[5] } == ["ThreadCreated", "ThreadDestroyed"])

            let groups = try #require(try await pool.send(RedisCommand("XINFO", "GROUPS", layout.changeLog(of: threadId))).array)
            #expect(groups.count == 1)
            #expect(try await pool.send(RedisCommand("HGET", layout.config, "partitions")).string == "8")
        }
    }

    @Test("setup is idempotent and refuses another partition count")
    func setupIdempotent() async throws {
        try await withRedis { pool in
            let layout = KeyLayout(namespace: TestRedis.uniqueNamespace(), partitionCount: 4)
            let first = try await StoreSetup.run(on: pool, layout: layout)
            #expect(first.groupsCreated == 4)
            let second = try await StoreSetup.run(on: pool, layout: layout)
            #expect(second.groupsCreated == 0)
            #expect(try await StoreSetup.storedLayout(on: pool, namespace: layout.namespace) == layout)
            await #expect(throws: EventStoreError.self) {
                _ = try await StoreSetup.run(on: pool, layout: KeyLayout(namespace: layout.namespace, partitionCount: 5))
            }
            #expect(await StoreSetup.isReady(on: pool))
        }
    }

    @Test("a load naming 9,000 messages reads them in bounded HMGETs")
    func loadManyMessages() async throws {
        try await withStore(.redis) { store, _, _ in
            let threadId = ThreadID.generate()
            let kept = MessageID.generate()
            _ = try await store.append(
                appendRequest(threadId, expected: 0, [createThread(threadId), .messagesAdded([message(kept)])]))
            let asked = [kept] + (1..<9_000).map { _ in MessageID.generate() }
            let loaded = try await store.load(threadId, since: nil, messageIds: asked, commandId: nil)
            #expect(loaded.state?.messages.keys.sorted() == [kept])
        }
    }

    @Test("an append whose later event is malformed writes nothing")
    func malformedAppendWritesNothing() async throws {
        try await withStore(.redis) { _, layout, pool in
            let pool = try #require(pool)
            let threadId = ThreadID.generate()
            let created = createThread(threadId)
            await #expect(throws: RedisError.self) {
                try await pool.send(
                    RedisCommand(
                        "FCALL", "tw_append", "4", layout.threadStream(threadId), layout.changeLog(of: threadId),
                        layout.idempotencyRecord(threadId, commandId: "c1"), layout.messageIndex(threadId),
                        "0", threadId.rawValue, "c1", "1700000000000", alice.rawValue, "", "", "0", "2",
                        created.typeName, created.encodedData(), "MessagesAdded", "not json"))
            }
            #expect(try await pool.send(RedisCommand("EXISTS", layout.threadStream(threadId), layout.messageIndex(threadId))).int == 0)
            #expect(try await pool.send(RedisCommand("XLEN", layout.changeLog(of: threadId))).int == 0)
        }
    }

    @Test("an append whose snapshot arguments do not match its keys writes nothing")
    func malformedSnapshotArgumentsWriteNothing() async throws {
        try await withStore(.redis) { _, layout, pool in
            let pool = try #require(pool)
            let threadId = ThreadID.generate()
            let created = createThread(threadId)
            let keys = [
                layout.threadStream(threadId), layout.changeLog(of: threadId), layout.messageIndex(threadId),
                layout.idempotencyRecord(threadId, commandId: "c1"), layout.activityIndex(of: threadId),
            ]
            let arguments = ["0", threadId.rawValue, "1700000000000", "1", "c1", alice.rawValue, "", "", "0", "1", created.typeName, created.encodedData()]
            for (keys, arguments) in [
                (keys + [layout.snapshot(threadId)], arguments),  // a snapshot key without its version and state
                (keys + [layout.snapshot(threadId)], arguments + ["one", "{}"]),  // a version that is no number
                (keys, arguments + ["1", "{}"]),  // a snapshot without its key
            ] {
                await #expect(throws: RedisError.self) {
                    try await pool.send(RedisCommand(["FCALL", "tw_append_batch", String(keys.count)] + keys + arguments))
                }
            }
            #expect(try await pool.send(RedisCommand("EXISTS", layout.threadStream(threadId), layout.snapshot(threadId))).int == 0)
            #expect(try await pool.send(RedisCommand("XLEN", layout.changeLog(of: threadId))).int == 0)
        }
    }

    @Test("tw_save_snapshot still serves the previous release, and keeps the newest snapshot only")
    func previousSnapshotSaveStillWorks() async throws {
        try await withStore(.redis) { _, layout, pool in
            let pool = try #require(pool)
            let snapshot = layout.snapshot(.generate())
            for (version, expected) in [("5", 1), ("3", 0), ("6", 1)] {
                let reply = try await pool.send(RedisCommand("FCALL", "tw_save_snapshot", "1", snapshot, version, "{\"v\":\(version)}"))
                #expect(reply.int == expected)
            }
            #expect(try await pool.send(RedisCommand("HGET", snapshot, "version")).string == "6")
        }
    }

    @Test("the one-command tw_append of library version 3 still serves the previous release during a rolling upgrade")
    func previousAppendStillWorks() async throws {
        try await withStore(.redis) { store, layout, pool in
            let pool = try #require(pool)
            let threadId = ThreadID.generate()
            let created = createThread(threadId)
            func appendV3(expected: Int, key: String, fingerprint: String) -> RedisCommand {
                RedisCommand(
                    "FCALL", "tw_append", "4", layout.threadStream(threadId), layout.changeLog(of: threadId),
                    layout.idempotencyRecord(threadId, commandId: key), layout.messageIndex(threadId),
                    String(expected), threadId.rawValue, key, "1700000000000", alice.rawValue, fingerprint, "first", "60", "1",
                    created.typeName, created.encodedData())
            }
            let first = try await pool.send(appendV3(expected: 0, key: "v3", fingerprint: "f")).array
            #expect(first?.first?.string == "appended" && first?.last?.int == 1)
            let retry = try await pool.send(appendV3(expected: 1, key: "v3", fingerprint: "f")).array
            #expect(retry?.map { $0.string ?? String($0.int ?? -1) } == ["duplicate", "1", "first"])
            let reused = try await pool.send(appendV3(expected: 1, key: "v3", fingerprint: "g")).array
            #expect(reused?.map { $0.string ?? String($0.int ?? -1) } == ["reused", "1"])
            let events = try await store.events(of: threadId, after: 0, limit: 10)
            #expect(events.map(\.commandId) == ["v3"])
            // It names no activity index; the append still moves the partition's.
            let activity = try await pool.send(RedisCommand("ZSCORE", layout.activityIndex(of: threadId), threadId.rawValue))
            #expect(activity.string.flatMap(Double.init) == 1_700_000_000_000)
        }
    }

    /// list-threads trusts the activity index without reading streams, so it
    /// must move with every append, in the same step, and with nothing else.
    @Test("an append moves its thread in the partition's activity index; a refused one does not")
    func appendsMoveTheActivityIndex() async throws {
        try await withStore(.redis) { store, layout, pool in
            let pool = try #require(pool)
            let threadId = ThreadID.generate()
            func activity() async throws -> Int64? {
                try await pool.send(RedisCommand("ZSCORE", layout.activityIndex(of: threadId), threadId.rawValue))
                    .string.flatMap(Double.init).map { Int64($0) }
            }
            _ = try await store.append(appendRequest(threadId, expected: 0, [createThread(threadId)], at: 1_700_000_000_001))
            #expect(try await activity() == 1_700_000_000_001)
            _ = try await store.append(appendRequest(threadId, expected: 1, [.messagesAdded([message(.generate())])], at: 1_700_000_000_050))
            #expect(try await activity() == 1_700_000_000_050)
            let stale = try await store.append(appendRequest(threadId, expected: 1, [.messagesAdded([message(.generate())])], at: 1_700_000_000_099))
            #expect(stale == .conflict(actualVersion: 2))
            #expect(try await activity() == 1_700_000_000_050)
        }
    }

    @Test("a store that finds the library missing loads it and carries on")
    func reloadsMissingLibrary() async throws {
        try await RedisTestServer.with { server in
            try await withRedis(url: server.url) { pool in
                #expect(await StoreSetup.isReady(on: pool) == false)
                let store = RedisEventStore(redis: pool, layout: KeyLayout(namespace: "tw", partitionCount: 4), logger: testLogger)
                let threadId = ThreadID.generate()
                let outcome = try await store.append(appendRequest(threadId, expected: 0, [createThread(threadId)]))
                #expect(outcome == .appended(version: 1))
                #expect(await StoreSetup.isReady(on: pool))
            }
        }
    }

    @Test("a server that is down gives unavailable, not a hang")
    func serverDown() async throws {
        let url = try await RedisTestServer.with { server in server.url }  // gone once `with` returns
        try await withRedis(url: url) { pool in
            let store = RedisEventStore(redis: pool, layout: KeyLayout(), logger: testLogger)
            await #expect {
                _ = try await store.load(.generate(), since: nil, messageIds: [], commandId: nil)
            } throws: { error in
                (error as? EventStoreError)?.code == .unavailable
            }
        }
    }
}
