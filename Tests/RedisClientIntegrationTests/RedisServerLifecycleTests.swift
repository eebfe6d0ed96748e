import Foundation
import RedisClient
import RedisTestSupport
import Testing

/// Tests that need a redis-server of their own: stopped, restarted, or configured differently.
@Suite struct RedisServerLifecycleTests {
    @Test func poolReconnectsAfterTheServerRestarts() async throws {
        try await withPrivateServer { server in
            try await withPool(url: server.url) { pool in
                let key = TestRedis.uniqueNamespace() + ":k"
                #expect(try await pool.send(RedisCommand("SET", key, "before")) == .simpleString("OK"))

                await server.kill()
                let error = await #expect(throws: RedisError.self) { try await pool.send(RedisCommand("GET", key)) }
                #expect(error?.code == .connectionClosed || error?.code == .connectionFailed)
                #expect(error?.message.isEmpty == false)

                try await server.restart()
                // The data directory has no snapshot (--save ""), so the key is gone: a fresh server answered.
                #expect(try await pool.send(RedisCommand("GET", key)).isNull)
                #expect(try await pool.send(RedisCommand("SET", key, "after")) == .simpleString("OK"))
            }
        }
    }

    @Test func nothingListeningFailsFastWithConnectionFailed() async throws {
        try await withPrivateServer { server in
            await server.kill()
            let start = ContinuousClock.now
            let error = await #expect(throws: RedisError.self) {
                try await withPool(url: server.url, { $0.connectTimeout = .seconds(10) }) { pool in
                    try await pool.send(RedisCommand("PING"))
                }
            }
            #expect(error?.code == .connectionFailed)
            #expect(error?.message.contains("127.0.0.1:\(server.port)") == true)
            // A refused connection answers at once: far below the connect timeout, which must not be what ended it.
            #expect(ContinuousClock.now - start < .seconds(2))
        }
    }

    @Test func connectsOverAUnixSocket() async throws {
        let socketPath = "/tmp/tw-redis-\(UUID().uuidString.prefix(8)).sock"
        // A killed server leaves its socket file behind.
        defer { try? FileManager.default.removeItem(atPath: socketPath) }
        try await withPrivateServer(arguments: ["--unixsocket", socketPath, "--unixsocketperm", "700"]) { _ in
            try await withConnection(url: "unix://\(socketPath)?db=1") { connection async throws in
                let key = TestRedis.uniqueNamespace() + ":unix"
                #expect(try await connection.send(RedisCommand("SET", key, "via-socket")) == .simpleString("OK"))
                #expect(try await connection.send(RedisCommand("GET", key)).string == "via-socket")
                let info = try await connection.send(RedisCommand("CLIENT", "INFO")).string ?? ""
                #expect(info.contains("db=1"))
                #expect(info.contains("addr=\(socketPath)") || info.contains("laddr=\(socketPath)"))
            }
        }
    }

    @Test func authenticatesWithPasswordAndSelectsTheDatabase() async throws {
        try await withPrivateServer(arguments: ["--requirepass", "p@ss:w/rd"]) { server in
            let url = "redis://:p%40ss%3Aw%2Frd@127.0.0.1:\(server.port)/3"
            try await withConnection(url: url) { connection async throws in
                #expect(try await connection.send(RedisCommand("PING")) == .simpleString("PONG"))
                #expect(try await connection.send(RedisCommand("CLIENT", "INFO")).string?.contains("db=3") == true)
            }

            let wrong = await #expect(throws: RedisError.self) {
                try await connect(url: "redis://:not-it@127.0.0.1:\(server.port)")
            }
            // Refused credentials have their own code (a process stops on it at start), and name the user.
            #expect(wrong?.code == .authenticationFailed)
            #expect(wrong?.message == "Redis refused the credentials for user 'default' (WRONGPASS)")
            #expect(wrong?.message.contains("not-it") == false)

            try await withConnection(url: server.url) { unauthenticated in
                let error = await #expect(throws: RedisError.self) {
                    try await unauthenticated.send(RedisCommand("PING"))
                }
                #expect(error?.serverErrorPrefix == "NOAUTH")
            }
        }
    }

    @Test func authenticatesWithUsernameAndPassword() async throws {
        try await withPrivateServer(arguments: ["--user", "worker", "on", ">worker-secret", "~*", "+@all"]) { server in
            try await withConnection(url: "redis://worker:worker-secret@127.0.0.1:\(server.port)") {
                connection async throws in
                #expect(try await connection.send(RedisCommand("ACL", "WHOAMI")).string == "worker")
            }
        }
    }
}
