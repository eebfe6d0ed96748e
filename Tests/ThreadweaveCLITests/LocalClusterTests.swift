import Foundation
import RedisClient
import RedisTestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `scripts/local-cluster.sh --background`: the Kubernetes topology as local
/// processes (its own redis-server, one process per function, two workers, a
/// router), driven only through the router's one base URL. Starts its own
/// Redis, but under `make test-cluster` runs on the test cluster (a namespace of its own).
@Suite(.serialized) struct LocalClusterTests {
    private let alice = "01HZ0000000000000000A11CE0"
    private let bob = "01HZ00000000000000000B0B00"

    @Test(.timeLimit(.minutes(3))) func theTopologyServesEveryFunctionAndLosesNothingWhenAWorkerDies() async throws {
        try await LocalCluster.run { cluster in
            let thread = try await readYourWritesThroughTheWorkers(cluster)
            try await aSurvivingWorkerCatchesUp(cluster, thread: thread)
            try await watchThreadStreamsThroughTheRouter(cluster, thread: thread)
            try await everyFunctionIsReachable(cluster)
        }
    }

    /// Create, join, post; then queries with `minVersion` see those writes.
    private func readYourWritesThroughTheWorkers(_ cluster: LocalCluster) async throws -> String {
        let (createStatus, created) = try await cluster.send(
            "POST", "/v1/threads/create", ["accountId": alice, "title": "local cluster"])
        #expect(createStatus == 201)
        let thread = try #require(created["threadId"] as? String)
        let (joinStatus, joined) = try await cluster.send(
            "POST", "/v1/threads/\(thread)/member-ids/join", ["accountId": alice, "accountIds": [bob]])
        #expect(joinStatus == 200)
        #expect(joined["version"] as? Int == 2)

        var version = 2
        for index in 0..<4 {
            // Half by REST route, half by name (OpenFaaS-style): both reach add-messages.
            let path = index.isMultiple(of: 2) ? "/v1/threads/\(thread)/messages/add" : "/function/add-messages"
            version = try await addMessage(cluster, thread: thread, path: path, text: "hello \(index)")
        }
        let view = try await query(cluster, "/v1/threads/\(thread)?accountId=\(bob)&minVersion=\(version)")
        #expect(view["version"] as? Int == version)
        #expect(view["messageCount"] as? Int == 4)
        #expect(view["memberCount"] as? Int == 1)
        let page = try await query(cluster, "/v1/threads/\(thread)/messages?accountId=\(bob)&limit=100&minVersion=\(version)")
        #expect((page["messages"] as? [Any])?.count == 4)
        return thread
    }

    /// SIGKILL worker-0 while messages keep coming: worker-1 projects every
    /// later event, and claims what worker-0 held unacknowledged.
    private func aSurvivingWorkerCatchesUp(_ cluster: LocalCluster, thread: String) async throws {
        let worker = try #require(cluster.processes.first { $0.role == "worker" && $0.name == "worker-0" })
        var version = 0
        for index in 4..<40 {
            if index == 14 { #expect(kill(worker.pid, SIGKILL) == 0) }
            version = try await addMessage(cluster, thread: thread, path: "/v1/threads/\(thread)/messages/add", text: "hello \(index)")
        }
        #expect(version == 2 + 40)

        let view = try await query(cluster, "/v1/threads/\(thread)?accountId=\(bob)&minVersion=\(version)")
        #expect(view["version"] as? Int == version, "get-thread answers the last command's version")
        #expect(view["messageCount"] as? Int == 40)
        let page = try await query(cluster, "/v1/threads/\(thread)/messages?accountId=\(bob)&limit=100&minVersion=\(version)")
        let texts = (page["messages"] as? [[String: Any]])?.compactMap { $0["text"] as? String }
        #expect(texts == (0..<40).map { "hello \($0)" }, "every message posted, once, in order")

        let deadline = ContinuousClock.now + .seconds(30)
        var pending = try await cluster.pendingEntries()
        while pending > 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(250))
            pending = try await cluster.pendingEntries()
        }
        #expect(pending == 0, "worker-1 claimed and acknowledged what worker-0 left pending")
    }

    /// Server-sent events pass through the router as they come, not at the end;
    /// destroying the thread ends the stream (and lets watch-thread stop at once).
    private func watchThreadStreamsThroughTheRouter(_ cluster: LocalCluster, thread: String) async throws {
        let watch = StreamingRequest(url: cluster.url("/v1/threads/\(thread)/events?accountId=\(bob)"), lastEventId: "0")
        defer { watch.cancel() }
        try await watch.wait(until: { $0.contains("id: 42\n") })
        #expect(!watch.isFinished, "the events arrive while the stream is open")
        #expect(watch.received.contains("id: 1\nevent: ThreadCreated\n"), "replayed from Last-Event-ID 0")

        let (status, _) = try await cluster.send("POST", "/v1/threads/\(thread)/destroy", ["accountId": alice])
        #expect(status == 200)
        try await watch.wait(until: { _ in watch.isFinished })
        #expect(watch.received.contains("id: 43\nevent: ThreadDestroyed\n"))
    }

    /// Each descriptor's route and `/function/<name>` reach that function: it
    /// answers its own 400 (no `accountId`), which carries the router's `Via`.
    private func everyFunctionIsReachable(_ cluster: LocalCluster) async throws {
        let placeholder = "01J0000000000000000000TEST"
        var probed: [String] = []
        for descriptor in try LocalCluster.descriptors() {
            let route = descriptor.route.replacingOccurrences(
                of: #"\{[^/]+\}"#, with: placeholder, options: .regularExpression)
            // By name it is POST /function/<name>, but a stream is a GET (`GET /?threadId=&accountId=`).
            let byName = descriptor.kind == "stream" ? "GET" : "POST"
            for (method, path) in [(descriptor.method, route), (byName, "/function/\(descriptor.name)")] {
                let (status, via, body) = try await cluster.probe(method, path)
                #expect(via != nil && status == 400, "\(method) \(path) (\(descriptor.name)): \(status) \(body)")
            }
            probed.append(descriptor.name)
        }
        #expect(probed.count >= 14)

        // The router's own answers carry no `Via`: that is what tells them apart above.
        let (status, via, _) = try await cluster.probe("GET", "/v1/no-such-route")
        #expect(status == 404 && via == nil)
    }

    private func addMessage(_ cluster: LocalCluster, thread: String, path: String, text: String) async throws -> Int {
        var body: [String: Any] = ["accountId": bob, "messages": [["text": text]]]
        if path.hasPrefix("/function/") { body["threadId"] = thread }
        let (status, answer) = try await cluster.send("POST", path, body)
        #expect(status == 200, "add-messages: \(answer)")
        return try #require(answer["version"] as? Int)
    }

    /// A query; a 504 (`minVersion` not reached within its bounded wait) is retried.
    private func query(_ cluster: LocalCluster, _ path: String) async throws -> [String: Any] {
        for _ in 0..<4 {
            let (status, answer) = try await cluster.send("GET", path, nil)
            if status == 504 { continue }
            #expect(status == 200, "GET \(path): \(answer)")
            return answer
        }
        throw CLITestFailure("GET \(path) timed out four times")
    }
}

/// A cluster started by `scripts/local-cluster.sh --background` in a private
/// directory, and stopped by `scripts/local-cluster.sh stop`: only the pids
/// its state file lists are ever signalled.
struct LocalCluster {
    struct Member: Decodable {
        var role: String
        var name: String
        var pid: Int32
        var port: Int?
    }

    private struct State: Decodable {
        var baseURL: String
        var redisURL: String
        var processes: [Member]
    }

    struct Descriptor: Decodable {
        var name: String
        var kind: String
        var method: String
        var route: String
    }

    let baseURL: String
    let redisURL: String
    let processes: [Member]

    /// `tw` on its own Redis; a namespace of its own on the shared test cluster.
    static let namespace = TestRedis.isCluster ? TestRedis.uniqueNamespace("localcluster") : "tw"

    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Starts a cluster, runs `body` against it, and stops it whether `body` throws or not.
    static func run(_ body: (LocalCluster) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("threadweave-cluster-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        var failure: (any Error)?
        do {
            // Workers claim a dead consumer's entries after 2 s (30 s by default): the test kills one.
            let onTestCluster = TestRedis.isCluster ? ["--redis-url", TestRedis.url] : []
            let (status, output) = try await script(["--background", "--claim-idle-seconds", "2"] + onTestCluster, directory: directory)
            guard status == 0 else { throw CLITestFailure("local-cluster.sh --background exited \(status):\n\(output)") }
            let state = try JSONDecoder().decode(State.self, from: Data(contentsOf: directory.appendingPathComponent("state.json")))
            try await body(LocalCluster(baseURL: state.baseURL, redisURL: state.redisURL, processes: state.processes))
        } catch {
            failure = error
        }
        // Read before stopping: the state file goes with the cluster.
        let started = (try? Data(contentsOf: directory.appendingPathComponent("state.json")))
            .flatMap { try? JSONDecoder().decode(State.self, from: $0) }?.processes ?? []
        let (status, output) = try await script(["stop"], directory: directory)
        #expect(status == 0, "local-cluster.sh stop: \(output)")
        let survivors = started.filter { isRunning($0.pid) }
        #expect(survivors.isEmpty, "still running after stop: \(survivors.map { "\($0.name) (\($0.pid))" })")
        if let failure { throw failure }
    }

    static func descriptors() throws -> [Descriptor] {
        let directory = repository.appendingPathComponent("functions")
        return try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
            .map { try JSONDecoder().decode(Descriptor.self, from: Data(contentsOf: $0)) }
    }

    func url(_ path: String) -> URL { URL(string: baseURL + path)! }

    /// A JSON request through the router: the status and the answer's object.
    func send(_ method: String, _ path: String, _ body: [String: Any]?) async throws -> (Int, [String: Any]) {
        let (data, response) = try await URLSession.shared.data(for: request(method, path, body))
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
    }

    /// A request without `accountId` (an empty body for POST): the status, the `Via` header and the body.
    func probe(_ method: String, _ path: String) async throws -> (Int, String?, String) {
        let (data, response) = try await URLSession.shared.data(for: request(method, path, method == "POST" ? [:] : nil))
        let http = response as? HTTPURLResponse
        return (http?.statusCode ?? 0, http?.value(forHTTPHeaderField: "Via"), String(decoding: data, as: UTF8.self))
    }

    /// Change-log entries delivered to a worker and not yet acknowledged, over every partition.
    func pendingEntries() async throws -> Int {
        var configuration = try RedisConfiguration(url: redisURL)
        configuration.maximumConnections = 1
        let pool = RedisConnectionPool(configuration: configuration, logger: .init(label: "local-cluster-test"))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            defer { group.cancelAll() }
            var pending = 0
            // Every primary's logs: on a cluster, KEYS sees one node's.
            for node in try await pool.primaryExecutors() {
                let logs = try await node.send(RedisCommand("KEYS", "\(Self.namespace):*:log")).array ?? []
                for log in logs.compactMap(\.string) {
                    pending += try await pool.send(RedisCommand("XPENDING", log, "rmu")).array?.first?.int ?? 0
                }
            }
            return pending
        }
    }

    private func request(_ method: String, _ path: String, _ body: [String: Any]?) throws -> URLRequest {
        var request = URLRequest(url: url(path))
        request.httpMethod = method
        request.timeoutInterval = 30
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        }
        return request
    }

    /// Runs `scripts/local-cluster.sh` with the built binary and a private state directory;
    /// polls for its exit (never blocks the cooperative pool). Output goes to a file, not a
    /// pipe: the cluster's children outlive the script and must not hold its output open.
    private static func script(_ arguments: [String], directory: URL) async throws -> (Int32, String) {
        let output = directory.appendingPathComponent("script-\(arguments[0]).out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = repository.appendingPathComponent("scripts/local-cluster.sh")
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["THREADWEAVE_BIN"] = try FunctionProcess.binary().path
        environment["THREADWEAVE_CLUSTER_DIR"] = directory.path
        environment["THREADWEAVE_NAMESPACE"] = namespace
        environment["PORT"] = nil
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = ContinuousClock.now + .seconds(120)
        while process.isRunning && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        if process.isRunning {
            process.terminate()  // the script stops what it started on SIGTERM
            throw CLITestFailure("local-cluster.sh \(arguments[0]) did not finish in 120 s")
        }
        return (process.terminationStatus, (try? String(contentsOf: output, encoding: .utf8)) ?? "")
    }

    /// True while `pid` runs; a zombie (exited, not reaped: the cluster's children
    /// outlive the script) counts as stopped.
    private static func isRunning(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let afterName = stat.split(separator: ")").last
        else { return true }
        return afterName.split(separator: " ").first != "Z"
    }
}

/// A GET whose body arrives piece by piece (server-sent events), collected
/// as it comes; `cancel` closes it.
final class StreamingRequest: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private let lock = NSLock()
    private var text = ""
    private var finished = false
    private var session: URLSession!

    init(url: URL, lastEventId: String) {
        super.init()
        var request = URLRequest(url: url)
        request.setValue(lastEventId, forHTTPHeaderField: "Last-Event-ID")
        request.timeoutInterval = 30
        session = URLSession(configuration: .ephemeral, delegate: self, delegateQueue: nil)
        session.dataTask(with: request).resume()
    }

    var received: String { lock.withLock { text } }
    var isFinished: Bool { lock.withLock { finished } }

    /// Polls (never blocks the cooperative pool) until `condition` holds for what was received.
    func wait(until condition: (String) -> Bool, timeout: Duration = .seconds(15)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition(received) {
            guard ContinuousClock.now < deadline else {
                throw CLITestFailure("stream: condition not met in \(timeout); received \(received.suffix(500))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func cancel() { session.invalidateAndCancel() }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        lock.withLock { text += String(decoding: data, as: UTF8.self) }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        lock.withLock { finished = true }
    }
}
