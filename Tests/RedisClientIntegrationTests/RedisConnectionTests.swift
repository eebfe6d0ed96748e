import RedisClient
import RedisTestSupport
import Testing

@Suite struct RedisConnectionTests {
    @Test func setThenGetRoundTrips() async throws {
        try await withConnection { connection async throws in
            let key = TestRedis.uniqueNamespace() + ":greeting"
            #expect(try await connection.send(RedisCommand("SET", key, "hello")) == .simpleString("OK"))
            #expect(try await connection.send(RedisCommand("GET", key)).string == "hello")
            #expect(try await connection.send(RedisCommand("GET", key + ":missing")).isNull)
            #expect(try await connection.send(RedisCommand("DEL", key)) == .integer(1))
        }
    }

    @Test func binaryKeysAndValuesRoundTripUnchanged() async throws {
        try await withConnection { connection in
            let key = Array((TestRedis.uniqueNamespace() + ":bin\0\r\n").utf8)
            let small: [UInt8] = Array(0...255) + [0, 0, 13, 10, 36, 42]
            var large = [UInt8](repeating: 0, count: 1 << 20)
            for index in large.indices { large[index] = UInt8(truncatingIfNeeded: index &* 31 &+ index >> 8) }

            for value in [small, large, []] {
                let set = try await connection.send(RedisCommand(binary: [Array("SET".utf8), key, value]))
                #expect(set == .simpleString("OK"))
                let got = try await connection.send(RedisCommand(binary: [Array("GET".utf8), key]))
                #expect(got.bytes == value)
            }
            #expect(try await connection.send(RedisCommand(binary: [Array("DEL".utf8), key])) == .integer(1))
        }
    }

    @Test func tenThousandPipelinedCommandsAnswerInOrder() async throws {
        try await withConnection { connection in
            let key = TestRedis.uniqueNamespace() + ":counter"
            let replies = try await connection.pipeline(Array(repeating: RedisCommand("INCR", key), count: 10_000))
            #expect(replies.count == 10_000)
            let values = replies.map { try? $0.get().int }
            #expect(values == (1...10_000).map { $0 })
            #expect(try await connection.send(RedisCommand("GET", key)).int == 10_000)
            _ = try await connection.send(RedisCommand("DEL", key))
        }
    }

    @Test func concurrentTasksShareOneConnectionAndEachGetsItsOwnReply() async throws {
        try await withConnection { connection in
            let namespace = TestRedis.uniqueNamespace()
            let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                for task in 0..<200 {
                    group.addTask {
                        var mismatches = 0
                        for round in 0..<10 {
                            let key = "\(namespace):\(task)"
                            let value = "\(task)-\(round)"
                            _ = try await connection.send(RedisCommand("SET", key, value))
                            if try await connection.send(RedisCommand("GET", key)).string != value { mismatches += 1 }
                        }
                        return mismatches
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(mismatches == 0)
        }
    }

    @Test func serverErrorRepliesCarryCodeAndPrefixAndLeaveTheConnectionUsable() async throws {
        try await withConnection { connection in
            let key = TestRedis.uniqueNamespace() + ":string"
            _ = try await connection.send(RedisCommand("SET", key, "1"))

            let wrongType = await #expect(throws: RedisError.self) {
                try await connection.send(RedisCommand("LPUSH", key, "x"))
            }
            #expect(wrongType?.code == .server)
            #expect(wrongType?.serverErrorPrefix == "WRONGTYPE")
            #expect(wrongType?.message.hasPrefix("WRONGTYPE Operation against a key") == true)

            let unknown = await #expect(throws: RedisError.self) {
                try await connection.send(RedisCommand("NO-SUCH-COMMAND"))
            }
            #expect(unknown?.code == .server && unknown?.serverErrorPrefix == "ERR")

            let replies = try await connection.pipeline([
                RedisCommand("INCR", key), RedisCommand("LPUSH", key, "x"), RedisCommand("GET", key),
            ])
            #expect(try replies[0].get() == .integer(2))
            #expect(throws: RedisError.self) { try replies[1].get() }
            #expect(try replies[2].get().string == "2")
            #expect(!connection.isClosed)
            _ = try await connection.send(RedisCommand("DEL", key))
        }
    }

    @Test func commandTimeoutFailsTheCommandAndClosesTheConnection() async throws {
        try await withConnection({ $0.commandTimeout = .milliseconds(200) }) { connection in
            let key = TestRedis.uniqueNamespace() + ":empty-list"
            let start = ContinuousClock.now
            let error = await #expect(throws: RedisError.self) {
                try await connection.send(RedisCommand("BLPOP", key, "5"))
            }
            #expect(error?.code == .timeout)
            #expect(ContinuousClock.now - start < .seconds(3))  // well before BLPOP's own 5 s
            // The late BLPOP reply must never be taken for the next command's.
            let next = await #expect(throws: RedisError.self) { try await connection.send(RedisCommand("PING")) }
            #expect(next?.code == .connectionClosed)
        }
    }

    @Test func blockingCommandWithoutTimeoutWaitsForData() async throws {
        try await withPool({ $0.commandTimeout = .milliseconds(300) }) { pool in
            let key = TestRedis.uniqueNamespace() + ":queue"
            let popped = try await pool.withDedicatedConnection { connection in
                let clientId = try #require(try await connection.send(RedisCommand("CLIENT", "ID")).int)
                return try await withThrowingTaskGroup(of: RedisValue?.self) { group in
                    group.addTask {
                        try await connection.send(RedisCommand("BLPOP", key, "0"), timeout: nil)
                    }
                    group.addTask {
                        try await withConnection { producer in
                            // The push waits for the server to report the consumer blocked in BLPOP, so it
                            // cannot come first; the consumer must still be blocked past the command timeout.
                            try #require(try await becomesBlocked(clientId, producer: producer))
                            try await Task.sleep(for: .milliseconds(600))
                            #expect(try await isBlocked(clientId, producer: producer))
                            _ = try await producer.send(RedisCommand("RPUSH", key, "job-1"))
                        }
                        return nil
                    }
                    var popped: RedisValue?
                    for try await case let value? in group { popped = value }
                    return popped
                }
            }
            #expect(popped == .array([.bulkString(Array(key.utf8)), .bulkString(Array("job-1".utf8))]))
        }
    }

    @Test func cancellingABlockingCommandEndsItPromptly() async throws {
        try await withConnection { connection in
            let key = TestRedis.uniqueNamespace() + ":never"
            let start = ContinuousClock.now
            let outcome = await withTaskGroup(of: RedisError?.self) { group in
                group.addTask {
                    do {
                        _ = try await connection.send(RedisCommand("BLPOP", key, "0"), timeout: nil)
                        return nil
                    } catch {
                        return error as? RedisError
                    }
                }
                try? await Task.sleep(for: .milliseconds(200))
                group.cancelAll()
                return await group.next() ?? nil
            }
            #expect(outcome?.code == .cancelled)
            #expect(ContinuousClock.now - start < .seconds(3))
            #expect(connection.isClosed)
        }
    }

    @Test func droppedConnectionFailsEveryInFlightCommandWithConnectionClosed() async throws {
        try await withConnection { connection in
            let id = try #require(try await connection.send(RedisCommand("CLIENT", "ID")).int)
            let key = TestRedis.uniqueNamespace() + ":blocked"
            let errors = try await withThrowingTaskGroup(of: RedisError?.self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        do {
                            _ = try await connection.send(RedisCommand("BLPOP", key, "0"), timeout: nil)
                            return nil
                        } catch {
                            return error as? RedisError
                        }
                    }
                }
                try await Task.sleep(for: .milliseconds(200))
                try await withConnection { killer async throws in
                    #expect(try await killer.send(RedisCommand("CLIENT", "KILL", "ID", String(id))) == .integer(1))
                }
                var errors: [RedisError?] = []
                for try await error in group { errors.append(error) }
                return errors
            }
            #expect(errors.count == 2)
            #expect(errors.allSatisfy { $0?.code == .connectionClosed })
            #expect(connection.isClosed)
        }
    }
}

/// True while the server reports client `clientId` blocked (flag `b`, e.g. in BLPOP).
private func isBlocked(_ clientId: Int, producer: RedisConnection) async throws -> Bool {
    let line = try await producer.send(RedisCommand("CLIENT", "LIST", "ID", String(clientId))).string ?? ""
    let flags = line.split(separator: " ").first { $0.hasPrefix("flags=") }?.dropFirst("flags=".count) ?? ""
    return flags.contains("b")
}

/// Polls until client `clientId` is blocked; false if it is not within 5 s.
private func becomesBlocked(_ clientId: Int, producer: RedisConnection) async throws -> Bool {
    let deadline = ContinuousClock.now + .seconds(5)
    while try await !isBlocked(clientId, producer: producer) {
        guard ContinuousClock.now < deadline else { return false }
        try await Task.sleep(for: .milliseconds(5))
    }
    return true
}
