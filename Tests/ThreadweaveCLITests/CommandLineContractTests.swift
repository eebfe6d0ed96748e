import EventStore
import Foundation
import LocalRedis
import Logging
import RedisClient
import RedisTestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// What scripts rely on: `--version`, the exit statuses of the README's table,
/// and `dead-letters list --json`.
@Suite(.timeLimit(.minutes(2))) struct CommandLineContractTests {
    @Test func versionPrintsTheBuildsVersion() async throws {
        let run = try await captureThreadweave(["--version"])
        #expect(run.status == 0)
        let version = run.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(version.wholeMatch(of: /[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?/) != nil, "\(run.output)")
    }

    @Test(arguments: [
        ["no-such-subcommand"], ["setup", "--no-such-option"], ["rebuild", "--partitions", "many"],
        ["serve", "--max-connections", "0", "--redis-url", "redis://127.0.0.1:1"],
    ])
    func aWrongCommandLineExitsWithTwo(_ arguments: [String]) async throws {
        let run = try await captureThreadweave(arguments)
        #expect(run.status == 2, "\(run.errors)")
        #expect(!run.errors.isEmpty)
    }

    /// `PORT` and `HTTP_MAX_CONNECTIONS` stand in for `--port` and
    /// `--max-connections`: text that is not a number is a wrong command line.
    @Test(arguments: [("PORT", "eighty"), ("HTTP_MAX_CONNECTIONS", "lots")])
    func aNonNumericHTTPVariableExitsWithTwoNamingIt(name: String, value: String) async throws {
        var environment = ProcessInfo.processInfo.environment
        environment[name] = value
        let run = try await captureThreadweave(["serve", "--redis-url", "redis://127.0.0.1:1"], environment: environment)
        #expect(run.status == 2)
        #expect(run.errors.contains("\(name) '\(value)' is not a number"), "\(run.errors)")
    }

    /// `--max-connections` reaches the process: started with a shell's soft
    /// open-file limit of 1024, it raises it (within the hard limit) to hold that many connections.
    @Test func maxConnectionsRaisesTheOpenFileLimitToHoldThem() async throws {
        var inherited = rlimit()
        #expect(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &inherited) == 0)
        let port = try freeLoopbackPort()
        let serve = try ThreadweaveChild([
            "serve", "--redis-url", TestRedis.url, "--namespace", TestRedis.uniqueNamespace("cli"), "--port", String(port),
            "--max-connections", "6000", "--log-level", "error",
        ], softOpenFileLimit: 1024)
        defer { serve.signal(SIGKILL) }
        var healthy = false
        let deadline = ContinuousClock.now + .seconds(30)
        while !healthy, serve.isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            let answer = try? await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/healthz")!).1
            healthy = (answer as? HTTPURLResponse)?.statusCode == 200
        }
        #expect(healthy)
        let limits = try String(contentsOfFile: "/proc/\(serve.pid)/limits", encoding: .utf8)
        let openFiles = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        let soft = try #require(openFiles.split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).first.flatMap { UInt64($0) })
        #expect(soft >= min(UInt64(6_000 + 512), UInt64(inherited.rlim_max)), "\(openFiles)")
        await serve.stop()
    }

    @Test func aRebuildWhileAnotherRunsExitsWithFour() async throws {
        let layout = KeyLayout(namespace: TestRedis.uniqueNamespace("cli"), partitionCount: 2)
        try await withTestPool { pool in
            _ = try await pool.send(RedisCommand("SET", layout.rebuildLock, "someone-else", "PX", "60000"))
        }
        let run = try await captureThreadweave(["rebuild", "--redis-url", TestRedis.url, "--namespace", layout.namespace])
        #expect(run.status == 4, "\(run.errors)")
        #expect(run.errors.contains("another rebuild"))
    }

    @Test func deadLettersListJSONIsOneDocumentWithStableFields() async throws {
        let layout = KeyLayout(namespace: TestRedis.uniqueNamespace("cli"), partitionCount: 2)
        let setup = try await captureThreadweave(["setup", "--redis-url", TestRedis.url, "--namespace", layout.namespace, "--partitions", "2"])
        #expect(setup.status == 0, "\(setup.errors)")
        try await withTestPool { pool in
            _ = try await pool.send(
                RedisCommand(
                    "XADD", layout.deadLetters(partition: 1), "*", "thread", "01J0000000000000000000THRD", "version", "3",
                    "type", "MessagesAdded", "data", "{\"bad\"", "reason", "undecodable payload", "originalId", "1700000000000-0"))
        }
        let run = try await captureThreadweave(["dead-letters", "list", "--json", "--redis-url", TestRedis.url, "--namespace", layout.namespace])
        #expect(run.status == 0, "\(run.errors)")
        struct Document: Decodable {
            struct Letter: Decodable {
                var partition: Int
                var id: String
                var originalId: String
                var reason: String
                var fields: [String: String]
            }
            var count: Int
            var deadLetters: [Letter]
        }
        let document = try JSONDecoder().decode(Document.self, from: Data(run.output.utf8))
        #expect(document.count == 1)
        let letter = try #require(document.deadLetters.first)
        #expect(letter.partition == 1)
        #expect(letter.originalId == "1700000000000-0")
        #expect(letter.reason == "undecodable payload")
        #expect(letter.fields == ["thread": "01J0000000000000000000THRD", "version": "3", "type": "MessagesAdded", "data": "{\"bad\""])
        #expect(!letter.id.isEmpty)
    }

    private func withTestPool(_ body: @Sendable (RedisConnectionPool) async throws -> Void) async throws {
        let pool = RedisConnectionPool(configuration: try RedisConfiguration(url: TestRedis.url), logger: Logger(label: "cli-contract-test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            defer { group.cancelAll() }
            try await body(pool)
        }
    }
}
