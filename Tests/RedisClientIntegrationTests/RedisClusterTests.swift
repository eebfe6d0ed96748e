import RedisClient
import RedisTestSupport
import Testing

/// The pool against a real Redis Cluster (`make test-cluster`): it finds the
/// cluster from one node, routes every key to its primary, splits pipelines
/// and follows redirects. Skipped against a single server.
@Suite(.enabled(if: TestRedis.isCluster, "needs make test-cluster"))
struct RedisClusterTests {
    /// Keys over many slots, hence over every primary.
    private func keys(_ namespace: String, count: Int = 200) -> [String] {
        (0..<count).map { "\(namespace):{k\($0)}" }
    }

    @Test func findsTheClusterAndEveryPrimary() async throws {
        try await withPool { pool in
            #expect(try await pool.isCluster)
            let primaries = try await pool.primaryExecutors()
            #expect(primaries.count == 3)
            for primary in primaries {
                #expect(try await primary.send(RedisCommand("ROLE")).array?.first?.string == "master")
            }
        }
    }

    @Test func routesEveryKeyToItsPrimary() async throws {
        let keys = keys(TestRedis.uniqueNamespace())
        try await withPool { pool in
            for key in keys { _ = try await pool.send(RedisCommand("SET", key, "value of \(key)")) }
            for key in keys { #expect(try await pool.send(RedisCommand("GET", key)).string == "value of \(key)") }
        }
    }

    @Test func splitsAPipelineOverTheNodesAndAnswersInOrder() async throws {
        let keys = keys(TestRedis.uniqueNamespace())
        try await withPool { pool in
            let written = try await pool.pipeline(keys.map { RedisCommand("SET", $0, "v-\($0)") })
            #expect(written.allSatisfy { (try? $0.get())?.string == "OK" })
            // A command's own error stays at its place among the others' replies.
            var reads = keys.map { RedisCommand("GET", $0) }
            reads.insert(RedisCommand("HGET", keys[7], "field"), at: 3)
            let replies = try await pool.pipeline(reads)
            #expect(replies.count == keys.count + 1)
            if case .failure(let error) = replies[3] { #expect(error.serverErrorPrefix == "WRONGTYPE") } else { Issue.record("expected WRONGTYPE") }
            var expected = keys.map { "v-\($0)" as String? }
            expected.insert(nil, at: 3)
            #expect(replies.enumerated().filter { $0.offset != 3 }.map { try? $0.element.get().string } == expected.enumerated().filter { $0.offset != 3 }.map(\.element))
        }
    }

    @Test func groupsKeysBySlotForMultiKeyCommands() async throws {
        try await withPool { pool in
            let groups = try await pool.keyGroupsForOneCommand(["a:{p01}:log", "b:{p02}:log", "c:{p01}:x"])
            #expect(groups == [["a:{p01}:log", "c:{p01}:x"], ["b:{p02}:log"]])
        }
    }

    @Test func followsAskDuringAMigrationAndMovedAfterIt() async throws {
        // A slot of its own per run; other tests' keys may share it, so the whole slot moves.
        let key = "{\(TestRedis.uniqueNamespace())}:migrating"
        let slot = String(HashSlot(key: key).rawValue)
        try await withPool { pool in
            _ = try await pool.send(RedisCommand("SET", key, "before"))
            // The key's owner answers it; every other primary answers MOVED.
            let primaries = try await pool.primaryExecutors()
            var owner: (any RedisCommandExecutor)?
            var other: (any RedisCommandExecutor)?
            for primary in primaries {
                if (try? await primary.send(RedisCommand("GET", key)))?.string == "before" {
                    owner = primary
                } else if other == nil {
                    other = primary
                }
            }
            let source = try #require(owner), target = try #require(other)
            let sourceID = try #require(try await source.send(RedisCommand("CLUSTER", "MYID")).string)
            let targetID = try #require(try await target.send(RedisCommand("CLUSTER", "MYID")).string)
            let targetPort = try #require(try await target.send(RedisCommand("CONFIG", "GET", "port")).array?.last?.string)
            _ = try await target.send(RedisCommand("CLUSTER", "SETSLOT", slot, "IMPORTING", sourceID))
            _ = try await source.send(RedisCommand("CLUSTER", "SETSLOT", slot, "MIGRATING", targetID))
            // A new key of the migrating slot lives on the target already: the source answers ASK.
            let fresh = "\(key):new"
            #expect(HashSlot(key: fresh).rawValue == HashSlot(key: key).rawValue)
            _ = try await pool.send(RedisCommand("SET", fresh, "asked"))
            #expect(try await pool.send(RedisCommand("GET", fresh)).string == "asked")
            // Move the old key and finish the migration: the pool follows MOVED.
            while let keys = try await source.send(RedisCommand("CLUSTER", "GETKEYSINSLOT", slot, "100")).array?
                .compactMap(\.string), !keys.isEmpty
            {
                _ = try await source.send(RedisCommand(["MIGRATE", "127.0.0.1", targetPort, "", "0", "5000", "KEYS"] + keys))
            }
            for node in primaries {
                _ = try await node.send(RedisCommand("CLUSTER", "SETSLOT", slot, "NODE", targetID))
            }
            #expect(try await pool.send(RedisCommand("GET", key)).string == "before")
            #expect(try await pool.send(RedisCommand("GET", fresh)).string == "asked")
        }
    }
}
