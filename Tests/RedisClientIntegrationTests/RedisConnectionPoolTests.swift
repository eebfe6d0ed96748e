import NIOCore
import NIOPosix
import RedisClient
import RedisTestSupport
import Testing

@Suite struct RedisConnectionPoolTests {
    @Test func manyConcurrentTasksShareABoundedSetOfConnections() async throws {
        try await withPool({ $0.maximumConnections = 3 }) { pool in
            let namespace = TestRedis.uniqueNamespace()
            let counter = "\(namespace):counter"
            let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                for task in 0..<100 {
                    group.addTask {
                        var mismatches = 0
                        for round in 0..<20 {
                            _ = try await pool.send(RedisCommand("INCR", counter))
                            let key = "\(namespace):\(task)"
                            _ = try await pool.send(RedisCommand("SET", key, "\(round)"))
                            if try await pool.send(RedisCommand("GET", key)).int != round { mismatches += 1 }
                        }
                        return mismatches
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(mismatches == 0)
            #expect(try await pool.send(RedisCommand("GET", counter)).int == 2_000)
            #expect((1...3).contains(pool.openConnectionCount))
        }
    }

    /// A task on an event loop sends on a connection of that loop: one of its own
    /// even while another loop's connection sits idle, and the same one again.
    @Test func aTaskOnAnEventLoopUsesThatLoopsConnection() async throws {
        try await withPool({ $0.maximumConnections = 4 }) { pool in
            // The pool's own group: a connection it opens for a task on one of these loops is on that loop.
            let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
            try #require(loops.count >= 2)
            func clientIds(on loop: any EventLoop) async throws -> [Int] {
                try await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) {
                    var ids: [Int] = []
                    for _ in 0..<3 { ids.append(try #require(try await pool.send(RedisCommand("CLIENT", "ID")).int)) }
                    return ids
                }
            }
            let first = try await clientIds(on: loops[0])
            let second = try await clientIds(on: loops[1])
            let firstAgain = try await clientIds(on: loops[0])
            #expect(Set(first).count == 1 && Set(second).count == 1)
            #expect(first[0] != second[0], "the second loop opened its own connection instead of hopping to the first's")
            #expect(firstAgain == first)
            // Off any loop, the least-loaded connection serves, as before: no third one is opened.
            _ = try await pool.send(RedisCommand("PING"))
            #expect(pool.openConnectionCount == 2)
        }
    }

    @Test func pipelineKeepsServerErrorsPerCommand() async throws {
        try await withPool { pool in
            let key = TestRedis.uniqueNamespace() + ":list"
            let replies = try await pool.pipeline([
                RedisCommand("RPUSH", key, "a", "b"), RedisCommand("GET", key), RedisCommand("LRANGE", key, "0", "-1"),
            ])
            #expect(try replies[0].get() == .integer(2))
            guard case .failure(let error) = replies[1] else {
                Issue.record("GET on a list must fail")
                return
            }
            #expect(error.code == .server && error.serverErrorPrefix == "WRONGTYPE")
            #expect(try replies[2].get().array?.compactMap(\.string) == ["a", "b"])
        }
    }

    @Test func runClosesThePoolOnCancellationAndLaterCommandsFailWithShutdown() async throws {
        let pool = RedisConnectionPool(configuration: try RedisConfiguration(url: TestRedis.url), logger: testLogger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            #expect(try await pool.send(RedisCommand("PING")) == .simpleString("PONG"))
            #expect(pool.openConnectionCount == 1)
            group.cancelAll()
            try await group.waitForAll()
        }
        #expect(pool.openConnectionCount == 0)
        let error = await #expect(throws: RedisError.self) { try await pool.send(RedisCommand("PING")) }
        #expect(error?.code == .shutdown)
        let dedicated = await #expect(throws: RedisError.self) {
            try await pool.withDedicatedConnection { _ in }
        }
        #expect(dedicated?.code == .shutdown)
    }

    @Test func shutdownClosesADedicatedConnectionThatIsStillBlocked() async throws {
        let pool = RedisConnectionPool(configuration: try RedisConfiguration(url: TestRedis.url), logger: testLogger)
        let namespace = TestRedis.uniqueNamespace()
        let outcome = try await withThrowingTaskGroup(of: RedisError?.self) { group in
            group.addTask {
                do {
                    _ = try await pool.withDedicatedConnection { connection in
                        _ = try await connection.send(RedisCommand("CLIENT", "SETNAME", namespace))
                        return try await connection.send(RedisCommand("BLPOP", namespace + ":never", "0"), timeout: nil)
                    }
                    return nil
                } catch {
                    return error as? RedisError
                }
            }
            try await waitUntilBlocked(clientName: namespace)
            await pool.shutdown()
            return try await group.next() ?? nil
        }
        #expect(outcome?.code == .connectionClosed)
    }

    /// Polls the server until the named client is blocked in BLPOP.
    private func waitUntilBlocked(clientName: String) async throws {
        try await withConnection { observer in
            for _ in 0..<250 {
                let clients = try await observer.send(RedisCommand("CLIENT", "LIST")).string ?? ""
                let blocked = clients.split(separator: "\n").contains { client in
                    client.contains("name=\(clientName) ") && client.contains("cmd=blpop")
                }
                if blocked { return }
                try await Task.sleep(for: .milliseconds(20))
            }
            Issue.record("client \(clientName) never blocked")
        }
    }
}
