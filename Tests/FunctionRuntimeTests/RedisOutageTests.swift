import Foundation
import FunctionRuntime
import HTTPTypes
import HummingbirdTesting
import RedisTestSupport
import Testing
import ThreadDomain

/// With Redis gone, commands answer 503 within the command timeout and write
/// nothing; when the server comes back the same application recovers alone.
@Suite struct RedisOutageTests {
    @Test func commandsAnswerUnavailableAndTheAppRecoversWhenRedisReturns() async throws {
        let server = try await RedisTestServer.start()
        defer { server.destroy() }
        let creator = ULID.generate()
        try await TestGateway.run(redisURL: server.url, commandTimeout: .seconds(1)) { gateway in
            let thread = try await gateway.createThread(creator: creator)
            server.stop()

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
