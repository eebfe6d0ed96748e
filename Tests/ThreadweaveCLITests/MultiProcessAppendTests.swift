import Foundation
import RedisClient
import RedisTestSupport
import Testing

/// The append protocol across processes: four `threadweave bench` processes
/// race on one thread; the stream must hold versions 1…N with no gap and no
/// duplicate, and every message a process was told is in, exactly once.
@Suite struct MultiProcessAppendTests {
    @Test func fourProcessesRacingOnOneThreadLeaveAGaplessStream() async throws {
        let namespace = TestRedis.uniqueNamespace("race")
        let thread = "01J" + String((0..<23).map { _ in "0123456789ABCDEFGHJKMNPQRSTVWXYZ".randomElement()! })
        let admin = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
        let binary = try FunctionProcess.binary()

        let acknowledged = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await runBench(binary, [
                        "bench", "--redis-url", TestRedis.url, "--namespace", namespace, "--partitions", "4",
                        "--thread", thread, "--admin", admin, "--writers", "8", "--commands", "15", "--json",
                        "--log-level", "error",
                    ])
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(acknowledged.count >= 400, "retries get nearly all 480 commands in")

        var configuration = try RedisConfiguration(url: TestRedis.url)
        configuration.maximumConnections = 1
        let pool = RedisConnectionPool(configuration: configuration, logger: .init(label: "test"))
        let entries = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            defer { group.cancelAll() }
            let keys = try #require(try await pool.send(RedisCommand("KEYS", "\(namespace):*:thread:\(thread)")).array)
            let key = try #require(keys.first?.string)
            return try #require(try await pool.send(RedisCommand("XRANGE", key, "-", "+")).array)
        }

        let versions = entries.compactMap { $0.array?.first?.string }
        #expect(versions == (1...entries.count).map { "\($0)-0" }, "versions 1…N, no gap, no duplicate")
        var added: [String] = []
        for entry in entries {
            let fields = entry.array?.last?.array?.compactMap(\.string) ?? []
            guard fields.count == 10, fields[1] == "MessagesAdded",
                let data = fields[9].data(using: .utf8),
                let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                let messages = object["messages"] as? [[String: Any]]
            else { continue }
            added += messages.compactMap { $0["id"] as? String }
        }
        #expect(Set(added).count == added.count, "no message appended twice")
        #expect(Set(added) == Set(acknowledged), "every acknowledged command is in, and nothing else")
    }

    /// `--rate`: commands are due at fixed intervals, so 60 commands at 300/s take at
    /// least the 0.2 s of their schedule however fast Redis answers, and the
    /// latency percentiles come from the HdrHistogram.
    @Test func anOpenLoopBenchKeepsItsSchedule() async throws {
        let binary = try FunctionProcess.binary()
        let report = try await runBenchReport(binary, [
            "bench", "--redis-url", TestRedis.url, "--namespace", TestRedis.uniqueNamespace("open"), "--partitions", "4",
            "--writers", "6", "--commands", "10", "--threads", "3", "--rate", "300", "--json", "--log-level", "error",
        ])
        #expect(report["succeeded"] as? Int == 60)
        let elapsed = try #require(report["elapsedSeconds"] as? Double)
        #expect(elapsed >= 59.0 / 300, "finished in \(elapsed) s, ahead of its schedule")
        let latency = try #require(report["latencyMs"] as? [String: Double])
        let (p50, p999, maximum) = (latency["p50"] ?? 0, latency["p999"] ?? 0, latency["max"] ?? 0)
        #expect(p50 > 0 && p50 <= p999 && p999 <= maximum)
    }

    /// Runs one bench process and answers the message ids its report says went in.
    private func runBench(_ binary: URL, _ arguments: [String]) async throws -> [String] {
        let report = try await runBenchReport(binary, arguments)
        return try #require(report["messageIds"] as? [String])
    }

    private func runBenchReport(_ binary: URL, _ arguments: [String]) async throws -> [String: Any] {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Read on a detached reader so a large report cannot fill the pipe and stall the child.
        let data = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Data, any Error>) in
            DispatchQueue.global().async {
                continuation.resume(returning: output.fileHandleForReading.readDataToEndOfFile())
            }
        }
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        #expect(process.terminationStatus == 0)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}
