import Foundation
import LocalRedis
import RedisTestSupport
import Testing
import ThreadDomain

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Runs built `threadweave function <name>` processes against one Redis and
/// drives a scenario across them, as Kubernetes would with one Deployment per function.
@Suite(.serialized) struct FunctionProcessTests {
    @Test func aScenarioSpansTwoFunctionProcesses() async throws {
        let namespace = TestRedis.uniqueNamespace("cli")
        let create = try await FunctionProcess.start("create-thread", namespace: namespace)
        defer { create.kill() }
        let add = try await FunctionProcess.start("add-messages", namespace: namespace)
        defer { add.kill() }

        let creator = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
        let (createStatus, created) = try await post(create.url("/"), ["accountId": creator, "title": "across processes"])
        #expect(createStatus == 201)
        let threadId = try #require(created["threadId"] as? String)

        let (addStatus, added) = try await post(
            add.url("/"), ["threadId": threadId, "accountId": creator, "messages": [["text": "from another process"]]])
        #expect(addStatus == 200)
        #expect(added["version"] as? Int == 2)
        #expect((added["messageIds"] as? [String])?.count == 1)

        let (routeStatus, viaRoute) = try await post(
            add.url("/v1/threads/\(threadId)/messages/add"), ["accountId": creator, "messages": [["text": "via the route"]]])
        #expect(routeStatus == 200)
        #expect(viaRoute["version"] as? Int == 3)

        // A process serves only its own function.
        let (wrongStatus, _) = try await post(create.url("/v1/threads/\(threadId)/messages/add"), ["accountId": creator])
        #expect(wrongStatus == 404)

        // SIGTERM: both stop gracefully, with status 0.
        #expect(await create.terminate() == 0)
        #expect(await add.terminate() == 0)
    }

    @Test func anUnknownFunctionNameExitsListingTheValidNames() async throws {
        let (status, output) = try await runThreadweave(["function", "no-such-function", "--redis-url", TestRedis.url])
        #expect(status != 0)
        #expect(output.contains("no-such-function"))
        #expect(output.contains("create-thread") && output.contains("add-messages"))
    }

    @Test func aFunctionProcessDefaultsToJWTAndWillNotStartWithoutKeyMaterial() async throws {
        var environment = ProcessInfo.processInfo.environment
        for name in ["THREADWEAVE_AUTH", "THREADWEAVE_JWT_SECRET", "THREADWEAVE_JWT_SECRET_FILE", "THREADWEAVE_JWKS_FILE"] {
            environment[name] = nil
        }
        let (status, output) = try await runThreadweave(
            ["function", "create-thread", "--redis-url", TestRedis.url], environment: environment)
        #expect(status != 0)
        #expect(output.contains("THREADWEAVE_JWT_SECRET"), "the refusal says what to configure: \(output)")
    }

    @Test func aFunctionProcessInJWTModeTakesTokensFromTheTokenCommand() async throws {
        let namespace = TestRedis.uniqueNamespace("cli-jwt")
        let secret = ["THREADWEAVE_JWT_SECRET": "a-function-test-secret-of-enough-length-\(UUID().uuidString)"]
        let (setupStatus, setupErrors) = try await runThreadweave(["setup", "--redis-url", TestRedis.url, "--namespace", namespace])
        #expect(setupStatus == 0, "\(setupErrors)")
        let create = try await FunctionProcess.start("create-thread", namespace: namespace, environment: secret)
        defer { create.kill() }
        let account = ULID.generate()

        let (anonymous, refusal) = try await post(create.url("/"), ["title": "t"])
        #expect(anonymous == 401)
        #expect((refusal["error"] as? [String: Any])?["code"] as? String == "unauthenticated")

        let token = try await mintToken(account: account, environment: secret)
        let (status, answer) = try await post(create.url("/"), ["title": "t"], token: token)
        #expect(status == 201, "\(answer)")
        let (mismatch, _) = try await post(create.url("/"), ["title": "t", "accountId": ULID.generate().rawValue], token: token)
        #expect(mismatch == 403)
        #expect(await create.terminate() == 0)
    }

    private func mintToken(account: ULID, environment: [String: String]) async throws -> String {
        let run = try await captureThreadweave(
            ["token", "--account", account.rawValue, "--ttl", "5m"],
            environment: ProcessInfo.processInfo.environment.merging(environment) { $1 })
        #expect(run.status == 0, "\(run.errors)")
        return run.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func post(_ url: URL, _ body: [String: Any], token: String? = nil) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        return (status, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
    }
}

/// One `threadweave function <name>` child on a free loopback port; only this
/// child is ever signalled, by its pid.
final class FunctionProcess: @unchecked Sendable {
    let port: Int
    private let process: Process

    private init(port: Int, process: Process) {
        self.port = port
        self.process = process
    }

    func url(_ path: String) -> URL { URL(string: "http://127.0.0.1:\(port)\(path)")! }

    /// Without `environment`, the function trusts `accountId` (`--auth none`).
    static func start(_ name: String, namespace: String, environment: [String: String]? = nil) async throws -> FunctionProcess {
        for _ in 0..<5 {
            let port = try freeLoopbackPort()
            let process = Process()
            process.executableURL = try binary()
            process.arguments = [
                "function", name, "--host", "127.0.0.1", "--port", String(port),
                "--redis-url", TestRedis.url, "--namespace", namespace, "--log-level", "warning",
            ] + (environment == nil ? ["--auth", "none"] : [])
            if let environment {
                process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let child = FunctionProcess(port: port, process: process)
            if await child.waitUntilHealthy() { return child }
            child.kill()
        }
        throw CLITestFailure("threadweave function \(name) did not become healthy")
    }

    /// SIGTERM, then waits for the exit status.
    func terminate() async -> Int32 {
        process.terminate()
        for _ in 0..<200 where process.isRunning {
            try? await Task.sleep(for: .milliseconds(50))
        }
        return process.isRunning ? -1 : process.terminationStatus
    }

    func kill() {
        guard process.isRunning else { return }
        process.terminate()
    }

    private func waitUntilHealthy() async -> Bool {
        for _ in 0..<200 {
            guard process.isRunning else { return false }
            if let (_, response) = try? await URLSession.shared.data(from: url("/healthz")),
                (response as? HTTPURLResponse)?.statusCode == 200
            {
                return true
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// The `threadweave` built beside this test bundle.
    /// `$THREADWEAVE_BIN` when set (CI points it at the release binary, built as the
    /// Dockerfile builds it), else the `threadweave` built beside the tests.
    static func binary() throws -> URL {
        if let override = ProcessInfo.processInfo.environment["THREADWEAVE_BIN"], !override.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: override) else {
                throw CLITestFailure("THREADWEAVE_BIN=\(override) is not an executable")
            }
            return URL(fileURLWithPath: override)
        }
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [
            besideTests.appendingPathComponent("threadweave"),
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("threadweave"),
        ]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw CLITestFailure("no built threadweave next to \(besideTests.path)")
        }
        return found
    }
}

struct CLITestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
