import Foundation
import FunctionRuntime
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOPosix
import RedisClient
import RedisTestSupport
import Testing
import ThreadDomain

/// With Redis gone, commands answer 503 within the command timeout and write
/// nothing; when the server comes back the same application recovers alone.
@Suite struct RedisOutageTests {
    @Test func commandsAnswerUnavailableAndTheAppRecoversWhenRedisReturns() async throws {
        try await RedisTestServer.with { server in
            let creator = ULID.generate()
            try await TestGateway.run(redisURL: server.url, commandTimeout: .seconds(1)) { gateway in
                let thread = try await gateway.createThread(creator: creator)
                await server.kill()

                let started = ContinuousClock.now
                let refused = try await gateway.addMessage("while down", by: creator, to: thread)
                #expect(refused.status == .serviceUnavailable)
                #expect(try refused.errorCode() == "unavailable")
                #expect(ContinuousClock.now - started < .seconds(3))
                let created = try await gateway.post("/v1/threads/create", json(["accountId": creator.rawValue, "title": "down"]))
                #expect(created.status == .serviceUnavailable)
                #expect(try await gateway.get("/readyz").status == .serviceUnavailable)
                #expect(try await gateway.get("/healthz").status == .ok)

                // The server comes back empty (no persistence): the library is loaded again on demand.
                try await server.restart()
                var ready = false
                for _ in 0..<50 where !ready {
                    ready = try await gateway.get("/readyz").status == .ok
                    if !ready { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(ready)
                let recovered = try await gateway.post("/v1/threads/create", json(["accountId": creator.rawValue, "title": "back"]))
                #expect(recovered.status == .created, "\(recovered.text)")
            }
        }
    }

    /// `BUSY` (a script running past `busy-reply-threshold`) is a passing
    /// state of the server: 503 with `Retry-After`, nothing written, and the
    /// same command goes in once the script is gone.
    @Test func aBusyServerAnswersUnavailableAndWritesNothing() async throws {
        try await RedisTestServer.with(arguments: ["--busy-reply-threshold", "100"]) { server in
            let creator = ULID.generate()
            try await TestGateway.run(redisURL: server.url, commandTimeout: .seconds(3)) { gateway in
                let thread = try await gateway.createThread(creator: creator)
                let admin = try await rawConnection(to: server)
                let looping = try await rawConnection(to: server)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    // Answers (with an error) only once SCRIPT KILL stops it.
                    group.addTask { _ = try? await looping.send(RedisCommand("EVAL", "while true do end", "0"), timeout: nil) }
                    try await waitUntil { (try? await admin.send(RedisCommand("PING"))) == nil }

                    let started = ContinuousClock.now
                    let refused = try await gateway.addMessage("while busy", by: creator, to: thread)
                    #expect(refused.status == .serviceUnavailable, "\(refused.text)")
                    #expect(try refused.errorCode() == "unavailable")
                    #expect(refused.headers[.retryAfter] != nil)
                    #expect(ContinuousClock.now - started < .seconds(3))

                    _ = try await admin.send(RedisCommand("SCRIPT", "KILL"))
                    try await group.waitForAll()
                }
                #expect(try await gateway.streamLength(of: thread) == 1)
                let accepted = try await gateway.addMessage("after the script", by: creator, to: thread)
                #expect(accepted.status == .ok, "\(accepted.text)")
                await admin.close()
                await looping.close()
            }
        }
    }

    /// A primary turned replica refuses writes with `READONLY` (as during a
    /// failover): 503, never 500, and nothing written.
    @Test func aReadOnlyReplicaAnswersUnavailableAndWritesNothing() async throws {
        try await RedisTestServer.with { server in
            let creator = ULID.generate()
            try await TestGateway.run(redisURL: server.url, commandTimeout: .seconds(3)) { gateway in
                let thread = try await gateway.createThread(creator: creator)
                let admin = try await rawConnection(to: server)
                // A primary that does not exist: the server stays a replica with its data.
                _ = try await admin.send(RedisCommand("REPLICAOF", "127.0.0.1", "1"))
                let refused = try await gateway.addMessage("on a replica", by: creator, to: thread)
                #expect(refused.status == .serviceUnavailable, "\(refused.text)")
                #expect(try refused.errorCode() == "unavailable")
                #expect(refused.headers[.retryAfter] != nil)
                let created = try await gateway.post("/v1/threads/create", json(["accountId": creator.rawValue, "title": "replica"]))
                #expect(created.status == .serviceUnavailable, "\(created.text)")

                _ = try await admin.send(RedisCommand("REPLICAOF", "NO", "ONE"))
                #expect(try await gateway.streamLength(of: thread) == 1)
                let accepted = try await gateway.addMessage("primary again", by: creator, to: thread)
                #expect(accepted.status == .ok, "\(accepted.text)")
                await admin.close()
            }
        }
    }

    private func rawConnection(to server: RedisTestServer) async throws -> RedisConnection {
        try await RedisConnection.connect(
            configuration: try RedisConfiguration(url: server.url), eventLoop: MultiThreadedEventLoopGroup.singleton.any(),
            logger: Logger(label: "outage-test"))
    }

    private func waitUntil(_ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while !(await condition()) {
            guard ContinuousClock.now < deadline else { throw TestFailure("condition not met within 5 s") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
