import EventStore
import Foundation
import LocalRedis
import Logging
import RedisClient
import RedisTestSupport
import Testing
import ThreadDomain

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

@Suite(.serialized, .timeLimit(.minutes(2))) struct ServeHousekeepingTests {
    /// A glob character in the namespace would let rebuild's SCAN patterns match other namespaces.
    @Test(arguments: [
        (["--namespace", "tw*"], [:]), (["--namespace", "a b"], [:]), ([], ["THREADWEAVE_NAMESPACE": "tw?"]),
        (["--namespace", String(repeating: "n", count: 65)], [:]),
    ] as [([String], [String: String])])
    func anInvalidNamespaceIsRefusedWithAClearError(arguments: [String], environment: [String: String]) async throws {
        let (status, errors) = try await runThreadweave(
            ["setup", "--redis-url", TestRedis.url] + arguments,
            environment: ProcessInfo.processInfo.environment.merging(environment) { $1 })
        #expect(status != 0)
        #expect(errors.contains("invalid namespace"))
    }

    /// `serve` has no reclaim job beside it: it trims acknowledged change-log entries itself.
    @Test func serveTrimsAcknowledgedLogEntries() async throws {
        let layout = KeyLayout(namespace: TestRedis.uniqueNamespace("servetrim"), partitionCount: 2)
        let port = try freeLoopbackPort()
        let serve = try ThreadweaveChild([
            "serve", "--redis-url", TestRedis.url, "--namespace", layout.namespace, "--partitions", "2",
            "--host", "127.0.0.1", "--port", String(port), "--trim-interval-seconds", "1", "--log-level", "error",
        ])
        defer { serve.signal(SIGKILL) }

        let admin = ULID.generate()
        var created = false
        let deadline = ContinuousClock.now + .seconds(30)
        while !created, ContinuousClock.now < deadline, serve.isRunning {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/v1/threads/create")!)
            request.httpMethod = "POST"
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(#"{"accountId":"\#(admin)","title":"trim me"}"#.utf8)
            if let (_, response) = try? await URLSession.shared.data(for: request) {
                created = (response as? HTTPURLResponse)?.statusCode == 201
            } else {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(created)

        let pool = RedisConnectionPool(configuration: try RedisConfiguration(url: TestRedis.url), logger: Logger(label: "serve-trim-test"))
        let trimmed = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            defer { group.cancelAll() }
            while ContinuousClock.now < deadline {
                var entries = 0
                for partition in layout.allPartitions {
                    entries += try await pool.send(RedisCommand("XLEN", layout.changeLog(partition: partition))).int ?? 0
                }
                if entries == 0 { return true }
                try await Task.sleep(for: .milliseconds(200))
            }
            return false
        }
        #expect(trimmed, "the change log still holds the acknowledged entry")
        await serve.stop()
    }
}
