import EventStore
import Foundation
import LocalRedis
import RedisClient
import RedisTestSupport
import Testing
import ThreadDomain

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

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

        let entries = try await streamEntries(of: thread, in: namespace)
        #expect(entries.map(\.version) == Array(1...entries.count), "versions 1…N, no gap, no duplicate")
        let added = try messageIds(addedIn: entries)
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

    /// `--url`: the bench posts over HTTP to a running `serve`, open loop, each
    /// writer on its own keep-alive connection; every message it was answered
    /// for is in the threads' streams, and nothing else was added.
    @Test func anOpenLoopBenchOverHTTPKeepsItsScheduleAndEveryAnsweredMessageIsIn() async throws {
        let namespace = TestRedis.uniqueNamespace("http")
        let port = try freeLoopbackPort()
        let serve = try ThreadweaveChild([
            "serve", "--redis-url", TestRedis.url, "--namespace", namespace, "--partitions", "4",
            "--host", "127.0.0.1", "--port", String(port), "--log-level", "error",
        ])
        defer { serve.signal(SIGKILL) }
        #expect(await serve.waitForStatus(200, at: "http://127.0.0.1:\(port)/readyz"), "serve became ready")

        let report = try await runBenchReport(try FunctionProcess.binary(), [
            "bench", "--url", "http://127.0.0.1:\(port)", "--writers", "6", "--commands", "10", "--threads", "3",
            "--rate", "300", "--json",
        ])
        #expect(report["succeeded"] as? Int == 60 && report["failed"] as? Int == 0)
        let elapsed = try #require(report["elapsedSeconds"] as? Double)
        #expect(elapsed >= 59.0 / 300, "finished in \(elapsed) s, ahead of its schedule")
        let acknowledged = try #require(report["messageIds"] as? [String])
        let threads = try #require(report["threads"] as? [String])
        #expect(threads.count == 3)

        var added: [String] = []
        for thread in threads { added += try messageIds(addedIn: try await streamEntries(of: thread, in: namespace)) }
        #expect(added.count == 60 && Set(added) == Set(acknowledged), "every answered message is in, once, and nothing else")
        serve.signal(SIGTERM)
        #expect(await serve.waitForExit() == 0)
    }

    /// The service goes away in the middle of an open-loop run: every command is
    /// accounted for, answered or failed, the run ends, and it exits 1.
    @Test func anHTTPBenchWhoseServiceGoesAwayCountsEveryCommandAndFails() async throws {
        let port = try freeLoopbackPort()
        let serve = try ThreadweaveChild([
            "serve", "--redis-url", TestRedis.url, "--namespace", TestRedis.uniqueNamespace("gone"), "--partitions", "4",
            "--host", "127.0.0.1", "--port", String(port), "--log-level", "error",
        ])
        defer { serve.signal(SIGKILL) }
        #expect(await serve.waitForStatus(200, at: "http://127.0.0.1:\(port)/readyz"), "serve became ready")

        async let report = runBenchReport(try FunctionProcess.binary(), [
            "bench", "--url", "http://127.0.0.1:\(port)", "--writers", "4", "--commands", "100", "--threads", "2",
            "--rate", "200", "--json",
        ], expectedStatus: 1)
        try await Task.sleep(for: .milliseconds(800))
        serve.signal(SIGKILL)
        let finished = try await report
        let succeeded = try #require(finished["succeeded"] as? Int)
        let failures = try #require(finished["failures"] as? [String: Int])
        #expect(succeeded > 0, "commands went in before the service went away")
        #expect(Set(failures.keys) == ["connection_failed"], "\(failures)")
        #expect(succeeded + (finished["failed"] as? Int ?? 0) == 400, "every command answered or failed: \(finished)")
    }

    /// `--create-url`: the functions as deployed, one process each: the bench
    /// creates its threads at create-thread's and posts to add-messages'.
    @Test func anHTTPBenchCreatesAtOneFunctionAndPostsToAnother() async throws {
        let namespace = TestRedis.uniqueNamespace("fns")
        let (setupStatus, setupErrors) = try await runThreadweave([
            "setup", "--redis-url", TestRedis.url, "--namespace", namespace, "--partitions", "4"])
        #expect(setupStatus == 0, "\(setupErrors)")
        var functions: [String: (child: ThreadweaveChild, port: Int)] = [:]
        for name in ["create-thread", "add-messages"] {
            let port = try freeLoopbackPort()
            functions[name] = (try ThreadweaveChild([
                "function", name, "--redis-url", TestRedis.url, "--namespace", namespace, "--auth", "none",
                "--host", "127.0.0.1", "--port", String(port), "--log-level", "error",
            ]), port)
        }
        defer { for function in functions.values { function.child.signal(SIGKILL) } }
        for (name, function) in functions {
            #expect(await function.child.waitForStatus(200, at: "http://127.0.0.1:\(function.port)/readyz"), "\(name) became ready")
        }
        let create = try #require(functions["create-thread"]).port, add = try #require(functions["add-messages"]).port

        let report = try await runBenchReport(try FunctionProcess.binary(), [
            "bench", "--url", "http://127.0.0.1:\(add)", "--create-url", "http://127.0.0.1:\(create)",
            "--writers", "3", "--commands", "5", "--threads", "2", "--json",
        ])
        #expect(report["succeeded"] as? Int == 15 && report["failed"] as? Int == 0, "\(report)")
        let threads = try #require(report["threads"] as? [String])
        var added: [String] = []
        for thread in threads { added += try messageIds(addedIn: try await streamEntries(of: thread, in: namespace)) }
        #expect(Set(added) == Set(try #require(report["messageIds"] as? [String])) && added.count == 15)
    }

    @Test func benchRefusesAURLItCannotPostTo() async throws {
        for url in ["https://127.0.0.1:8080", "http://127.0.0.1", "http://127.0.0.1:99999", "http://127.0.0.1:8080/v1"] {
            let (status, errors) = try await runThreadweave(["bench", "--url", url])
            #expect(status != 0 && errors.contains("--url must be http://host:port"), "\(url): \(errors)")
        }
        let (badCreate, badCreateErrors) = try await runThreadweave(["bench", "--url", "http://127.0.0.1:8080", "--create-url", "http://127.0.0.1"])
        #expect(badCreate != 0 && badCreateErrors.contains("--create-url must be http://host:port"), "\(badCreateErrors)")
        let (alone, aloneErrors) = try await runThreadweave(["bench", "--create-url", "http://127.0.0.1:8080"])
        #expect(alone != 0 && aloneErrors.contains("--create-url goes with --url"), "\(aloneErrors)")
    }

    private func messageIds(addedIn entries: [(version: Int, type: String, data: String)]) throws -> [String] {
        var added: [String] = []
        for entry in entries where entry.type == "MessagesAdded" {
            let object = try JSONSerialization.jsonObject(with: Data(entry.data.utf8)) as? [String: Any]
            added += (object?["messages"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        }
        return added
    }

    /// The version, type and data of every entry of a thread's stream in `namespace`.
    private func streamEntries(of thread: String, in namespace: String) async throws -> [(version: Int, type: String, data: String)] {
        var configuration = try RedisConfiguration(url: TestRedis.url)
        configuration.maximumConnections = 1
        let pool = RedisConnectionPool(configuration: configuration, logger: .init(label: "test"))
        let entries = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            defer { group.cancelAll() }
            let key = KeyLayout(namespace: namespace, partitionCount: 4).threadStream(try #require(ThreadID(thread)))
            return try #require(try await pool.send(RedisCommand("XRANGE", key, "-", "+")).array)
        }
        return entries.compactMap { entry in
            let fields = entry.array?.last?.array?.compactMap(\.string) ?? []
            guard let id = entry.array?.first?.string, let version = Int(id.prefix { $0 != "-" }), fields.count == 10 else { return nil }
            return (version, fields[1], fields[9])
        }
    }

    /// Runs one bench process and answers the message ids its report says went in.
    private func runBench(_ binary: URL, _ arguments: [String]) async throws -> [String] {
        let report = try await runBenchReport(binary, arguments)
        return try #require(report["messageIds"] as? [String])
    }

    private func runBenchReport(_ binary: URL, _ arguments: [String], expectedStatus: Int32 = 0) async throws -> [String: Any] {
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
        #expect(process.terminationStatus == expectedStatus)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}
