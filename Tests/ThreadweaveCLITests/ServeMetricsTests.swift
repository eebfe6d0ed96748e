import EventStore
import Foundation
import LocalRedis
import Logging
import ReadModel
import RedisClient
import RedisTestSupport
import Testing
import ThreadDomain
import ThreadFunctions

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// "Lag is visible": `threadweave serve` puts its in-process worker's
/// consumer-group gauges on its own `/metrics`, and `threadweave worker`
/// serves them (with `/healthz` and `/readyz`) on its port.
@Suite(.serialized, .timeLimit(.minutes(2))) struct ServeMetricsTests {
    @Test(arguments: ["serve", "worker"])
    func showsLagPendingAndDeadLettersPerPartition(subcommand: String) async throws {
        let logger = Logger(label: "cli-serve-metrics-test")
        let layout = KeyLayout(namespace: TestRedis.uniqueNamespace("servemetrics"), partitionCount: 4)
        let thread = ULID.generate()
        let partition = layout.partition(of: thread)
        let pool = RedisConnectionPool(configuration: try RedisConfiguration(url: TestRedis.url), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            defer { group.cancelAll() }
            // A known state before serve starts: the partition's only two entries are
            // pending with a consumer that is gone (not claimable for 30 s), so
            // serve's worker finds nothing to read: lag 0, pending 2, one dead letter.
            _ = try await StoreSetup.run(on: pool, layout: layout, libraries: StoreSetup.Library.all)
            let runner = CommandRunner(store: RedisEventStore(redis: pool, layout: layout, logger: logger), logger: logger)
            let admin = ULID.generate()
            _ = try await runner.run(CommandRequest(
                threadId: thread, command: .createThread(CreateThread(threadId: thread, creatorId: admin, title: "t")), actor: admin))
            _ = try await runner.run(CommandRequest(
                threadId: thread, command: .addMessages([NewMessage(id: .generate(), text: "hi")]), actor: admin))
            _ = try await pool.send(RedisCommand(
                "XREADGROUP", "GROUP", StoreSetup.consumerGroup, "gone", "COUNT", "10", "STREAMS", layout.changeLog(partition: partition), ">"))
            _ = try await pool.send(RedisCommand("XADD", layout.deadLetters(partition: partition), "*", "reason", "test"))
        }

        let port = try freeLoopbackPort()
        let serve = try ThreadweaveChild([
            subcommand, "--redis-url", TestRedis.url, "--namespace", layout.namespace, "--host", "127.0.0.1", "--port", String(port),
            "--log-level", "error",
        ])
        defer { serve.signal(SIGKILL) }

        let tag = layout.hashTag(partition: partition).dropFirst().dropLast()
        let expected = [
            #"threadweave_rmu_lag{partition="\#(tag)"}"#: 0.0,
            #"threadweave_rmu_pending{partition="\#(tag)"}"#: 2.0,
            #"threadweave_rmu_dead_letters{partition="\#(tag)"}"#: 1.0,
        ]
        var values: [String: Double] = [:]
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, serve.isRunning, expected.contains(where: { values[$0.key] != $0.value }) {
            try await Task.sleep(for: .milliseconds(200))
            values = await metrics(port: port)
        }
        for (series, value) in expected {
            #expect(values[series] == value, "\(series)")
        }
        #expect(await status(port: port, path: "/healthz") == 200)
        #expect(await status(port: port, path: "/readyz") == 200)
        await serve.stop()
        #expect(await serve.waitForExit() == 0)
    }

    private func status(port: Int, path: String) async -> Int? {
        let response = try? await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)\(path)")!).1
        return (response as? HTTPURLResponse)?.statusCode
    }

    /// `name{labels} value` lines of `/metrics`; empty while the server is not up.
    private func metrics(port: Int) async -> [String: Double] {
        guard let (data, _) = try? await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/metrics")!) else { return [:] }
        var values: [String: Double] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            values[String(line[..<space])] = value
        }
        return values
    }
}
