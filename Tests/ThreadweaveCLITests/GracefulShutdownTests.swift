import Foundation
import LocalRedis
import RedisTestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// SIGTERM ends an open watch-thread stream at once: a stream never finishes
/// by itself, and the server's graceful shutdown would otherwise wait for it
/// until the pod's grace period ran out.
@Suite(.timeLimit(.minutes(2))) struct GracefulShutdownTests {
    @Test func sigtermEndsOpenWatchStreamsAndServeExitsCleanly() async throws {
        let port = try freeLoopbackPort()
        let serve = try ThreadweaveChild([
            "serve", "--redis-url", TestRedis.url, "--namespace", TestRedis.uniqueNamespace("sigterm"),
            "--host", "127.0.0.1", "--port", String(port), "--log-level", "error",
        ])
        defer { serve.signal(SIGKILL) }
        let base = "http://127.0.0.1:\(port)"
        let account = "01J00000000000000000000ACC"
        var created: (status: Int, body: [String: Any])?
        for _ in 0..<300 where created?.status != 201 {
            created = try? await post(base + "/v1/threads/create", ["accountId": account, "title": "shutdown"])
            if created?.status != 201 { try await Task.sleep(for: .milliseconds(100)) }
        }
        let thread = try #require(created?.body["threadId"] as? String, "serve answered create")

        let watch = StreamingRequest(url: URL(string: base + "/v1/threads/\(thread)/events?accountId=\(account)")!, lastEventId: "0")
        defer { watch.cancel() }
        try await watch.wait(until: { $0.contains("id: 1\nevent: ThreadCreated\n") })

        let signalled = ContinuousClock.now
        serve.signal(SIGTERM)
        try await watch.wait(until: { _ in watch.isFinished }, timeout: .seconds(5))
        #expect(ContinuousClock.now - signalled < .seconds(3), "the open stream ended promptly")
        #expect(await serve.waitForExit(timeout: .seconds(10)) == 0, "serve exited with status 0")
    }

    private func post(_ url: String, _ body: [String: Any]) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        let (data, response) = try await URLSession.shared.data(for: request)
        let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, json)
    }
}
