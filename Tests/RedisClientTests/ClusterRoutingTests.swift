@testable import RedisClient
import Testing

@Suite struct HashSlotTests {
    @Test func crc16MatchesThePublishedCheckValue() {
        // CRC-16/XMODEM's check value, the one the Redis Cluster specification quotes.
        #expect(HashSlot(key: "123456789").rawValue == 0x31C3 & 16_383)
        #expect(HashSlot(key: "123456789").rawValue == 12_739)
    }

    @Test(arguments: [("foo", 12_182), ("bar", 5_061), ("hello", 866), ("somekey", 11_058), ("", 0)])
    func slotsAgreeWithRedis(_ key: String, _ slot: Int) {
        #expect(Int(HashSlot(key: key).rawValue) == slot)
    }

    @Test func aHashTagIsWhatIsHashed() {
        #expect(HashSlot(key: "{user1000}.following") == HashSlot(key: "user1000"))
        #expect(HashSlot(key: "{user1000}.followers") == HashSlot(key: "{user1000}.following"))
        #expect(HashSlot(key: "tw:{p07}:thread:01ABC") == HashSlot(key: "tw:{p07}:log"))
        #expect(HashSlot(key: "tw:{p07}:thread:01ABC") == HashSlot(key: "p07"))
    }

    @Test func theTagRulesOfTheSpecification() {
        // An empty tag does not count: the whole key is hashed.
        #expect(HashSlot(key: "foo{}{bar}").rawValue == 8_363)
        // The first `{` opens, the first `}` after it closes.
        #expect(HashSlot(key: "foo{{bar}}zap") == HashSlot(key: "{bar"))
        #expect(HashSlot(key: "foo{bar}{zap}") == HashSlot(key: "bar"))
        // No closing brace: the whole key.
        #expect(HashSlot(key: "foo{bar") != HashSlot(key: "bar"))
        #expect(HashSlot(rawValue: 16_384) == nil)
    }
}

@Suite struct ClusterTopologyTests {
    let seed = ClusterNode(host: "10.0.0.9", port: 7000)

    func node(_ fields: [(String, RedisValue)]) -> RedisValue {
        .array(fields.flatMap { [RedisValue.bulkString(Array($0.0.utf8)), $0.1] })
    }

    func text(_ value: String) -> RedisValue { .bulkString(Array(value.utf8)) }

    @Test func readsClusterShards() throws {
        let reply = RedisValue.array([
            node([
                ("slots", .array([.integer(0), .integer(5460), .integer(10923), .integer(10923)])),
                ("nodes", .array([
                    node([("id", text("a")), ("port", .integer(7001)), ("ip", text("127.0.0.1")), ("endpoint", text("127.0.0.1")),
                          ("role", text("master")), ("health", text("online"))]),
                    node([("id", text("b")), ("port", .integer(7004)), ("ip", text("127.0.0.1")), ("endpoint", text("127.0.0.1")),
                          ("role", text("replica")), ("health", text("online"))]),
                ])),
            ]),
            node([
                ("slots", .array([.integer(5461), .integer(10922), .integer(10924), .integer(16383)])),
                ("nodes", .array([
                    // A failed primary is left out; its promoted replica is the primary.
                    node([("id", text("c")), ("port", .integer(7002)), ("endpoint", text("127.0.0.1")), ("role", text("master")), ("health", text("fail"))]),
                    node([("id", text("d")), ("port", .integer(7005)), ("endpoint", text("")), ("role", text("master")), ("health", text("online"))]),
                ])),
            ]),
        ])
        let topology = try ClusterTopology.fromShards(reply, replyingNode: seed)
        #expect(topology.coversEverySlot)
        #expect(topology.primary(for: HashSlot(rawValue: 0)!) == ClusterNode(host: "127.0.0.1", port: 7001))
        #expect(topology.primary(for: HashSlot(rawValue: 10_923)!) == ClusterNode(host: "127.0.0.1", port: 7001))
        #expect(topology.primary(for: HashSlot(rawValue: 5_461)!) == ClusterNode(host: "10.0.0.9", port: 7005), "empty endpoint: the seed's host")
        #expect(topology.shards[0].replicas == [ClusterNode(host: "127.0.0.1", port: 7004)])
        #expect(topology.primaries.count == 2)
    }

    @Test func readsClusterSlotsAndNoticesUnservedSlots() throws {
        let reply = RedisValue.array([
            .array([.integer(0), .integer(8191), .array([text("127.0.0.1"), .integer(7001), text("a")]),
                    .array([text("127.0.0.1"), .integer(7004), text("b")])]),
            .array([.integer(8192), .integer(16000), .array([text("127.0.0.1"), .integer(7002), text("c")])]),
        ])
        let topology = try ClusterTopology.fromSlots(reply, replyingNode: seed)
        #expect(topology.primary(for: HashSlot(key: "foo")) == ClusterNode(host: "127.0.0.1", port: 7002))
        #expect(topology.primary(for: HashSlot(rawValue: 16_001)!) == nil)
        #expect(!topology.coversEverySlot)
        #expect(throws: RedisError.self) { try ClusterTopology.fromSlots(.integer(1), replyingNode: seed) }
        #expect(throws: RedisError.self) { try ClusterTopology.fromShards(.array([.array([text("slots")])]), replyingNode: seed) }
    }
}

@Suite struct ClusterRequestStateMachineTests {
    let first = ClusterNode(host: "127.0.0.1", port: 7001)
    let second = ClusterNode(host: "127.0.0.1", port: 7002)

    func serverError(_ text: String) -> Result<RedisValue, RedisError> {
        .failure(RedisError(code: .server, message: text))
    }

    @Test func parsesRedirects() {
        let replying = ClusterNode(host: "10.1.1.1", port: 6379)
        #expect(ClusterRedirect(RedisError(code: .server, message: "MOVED 3999 127.0.0.1:6381"), replyingNode: replying)
            == .moved(HashSlot(rawValue: 3_999)!, ClusterNode(host: "127.0.0.1", port: 6381)))
        #expect(ClusterRedirect(RedisError(code: .server, message: "ASK 3999 [::1]:6381"), replyingNode: replying)
            == .ask(HashSlot(rawValue: 3_999)!, ClusterNode(host: "::1", port: 6381)))
        #expect(ClusterRedirect(RedisError(code: .server, message: "MOVED 12 :6380"), replyingNode: replying)
            == .moved(HashSlot(rawValue: 12)!, ClusterNode(host: "10.1.1.1", port: 6380)))
        #expect(ClusterRedirect(RedisError(code: .server, message: "ERR MOVED 1 a:1"), replyingNode: replying) == nil)
        #expect(ClusterRedirect(RedisError(code: .server, message: "MOVED 99999 a:1"), replyingNode: replying) == nil)
    }

    @Test func followsMovedThenAnswers() {
        var machine = ClusterRequestStateMachine(target: first)
        #expect(machine.start() == .send(to: first, asking: false, after: .zero))
        #expect(machine.received(serverError("MOVED 5 127.0.0.1:7002")) == .send(to: second, asking: false, after: .zero))
        #expect(machine.received(.success(.integer(1))) == .answer)
    }

    @Test func asksOnceWithAsking() {
        var machine = ClusterRequestStateMachine(target: first)
        _ = machine.start()
        #expect(machine.received(serverError("ASK 5 127.0.0.1:7002")) == .send(to: second, asking: true, after: .zero))
        // The command's own error is its answer, never a retry.
        #expect(machine.received(serverError("WRONGTYPE Operation against a key")) == .answer)
    }

    @Test func waitsOnTryAgainAndReroutesOnClusterDownWithGrowingBackoff() {
        var machine = ClusterRequestStateMachine(target: first)
        _ = machine.start()
        #expect(machine.received(serverError("TRYAGAIN Multiple keys request during rehashing")) == .send(to: first, asking: false, after: .milliseconds(10)))
        #expect(machine.received(serverError("CLUSTERDOWN The cluster is down")) == .refreshAndResend(after: .milliseconds(20)))
        #expect(machine.resend(to: second) == .send(to: second, asking: false, after: .zero))
        #expect(machine.received(.failure(RedisError(code: .connectionFailed, message: "refused"))) == .refreshAndResend(after: .milliseconds(40)))
    }

    @Test func neverResendsACommandThatMayHaveRun() {
        var machine = ClusterRequestStateMachine(target: first)
        _ = machine.start()
        let lost = RedisError(code: .connectionClosed, message: "closed")
        guard case .fail(let error, let refresh) = machine.received(.failure(lost)) else {
            Issue.record("a lost connection is not retried")
            return
        }
        #expect(error.code == .connectionClosed && refresh)
    }

    @Test func givesUpAfterTheAttemptBudget() {
        var machine = ClusterRequestStateMachine(target: first, policy: .init(maximumAttempts: 3))
        _ = machine.start()
        #expect(machine.received(serverError("MOVED 5 127.0.0.1:7002")) != .answer)
        #expect(machine.received(serverError("MOVED 5 127.0.0.1:7001")) != .answer)
        guard case .fail(let error, true) = machine.received(serverError("MOVED 5 127.0.0.1:7002")) else {
            Issue.record("a redirect loop ends")
            return
        }
        #expect(error.message.hasPrefix("MOVED"))
    }
}

@Suite struct ClusterPipelinePlanTests {
    @Test func batchesPerNodeInFirstAppearanceOrderKeepingEachNodesOrder() {
        let plan = ClusterPipelinePlan(nodes: ["b", "a", "b", "c", "a", "b"])
        #expect(plan.batches.map(\.node) == ["b", "a", "c"])
        #expect(plan.batches.map(\.positions) == [[0, 2, 5], [1, 4], [3]])
    }

    @Test func reassemblesRepliesInTheCommandsOrder() {
        let plan = ClusterPipelinePlan(nodes: ["b", "a", "b", "c", "a", "b"])
        // Each batch answers its commands in its own order.
        let replies = plan.batches.map { batch in batch.positions.map { "reply \($0)" } }
        #expect(plan.reassemble(replies) == (0..<6).map { "reply \($0)" })
    }

    @Test func oneNodeIsOneBatchAndNoCommandsNone() {
        #expect(ClusterPipelinePlan(nodes: ["a", "a", "a"]).batches.map(\.positions) == [[0, 1, 2]])
        let empty = ClusterPipelinePlan<String>(nodes: [])
        #expect(empty.batches.isEmpty)
        #expect(empty.reassemble([[Int]]()).isEmpty)
    }
}

@Suite struct ClusterNodeListTests {
    @Test func parsesSeedsAsREDIS_CLUSTER_NODESHoldsThem() throws {
        #expect(
            try ClusterNode.list("10.0.0.1:7000, redis-1.redis:6379,[::1]:7001,")
                == [ClusterNode(host: "10.0.0.1", port: 7000), ClusterNode(host: "redis-1.redis", port: 6379), ClusterNode(host: "::1", port: 7001)])
    }

    @Test(arguments: ["10.0.0.1", "host:0", "host:70000", ":7000", "host:port"])
    func refusesWhatIsNotHostAndPort(_ text: String) {
        #expect(throws: RedisError.self) { try ClusterNode.list(text) }
    }
}

@Suite struct ClusterFailoverRetryTests {
    let node = ClusterNode(host: "127.0.0.1", port: 7000)

    @Test(arguments: ["MASTERDOWN Link with MASTER is down", "READONLY You can't write against a read only replica."])
    func refusalsDuringAFailoverReRouteAfterLearningTheMap(_ message: String) {
        var machine = ClusterRequestStateMachine(target: node)
        _ = machine.start()
        #expect(machine.received(.failure(RedisError(code: .server, message: message))) == .refreshAndResend(after: .milliseconds(10)))
    }

    @Test func givesUpAfterTheLastAttempt() {
        var machine = ClusterRequestStateMachine(target: node, policy: .init(maximumAttempts: 2))
        _ = machine.start()
        let down = RedisError(code: .server, message: "CLUSTERDOWN The cluster is down")
        #expect(machine.received(.failure(down)) == .refreshAndResend(after: .milliseconds(10)))
        _ = machine.resend(to: node)
        #expect(machine.received(.failure(down)) == .fail(down, refreshTopology: true))
    }
}
