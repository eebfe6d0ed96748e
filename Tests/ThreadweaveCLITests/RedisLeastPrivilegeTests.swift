import Foundation
import LocalRedis
import Logging
import RedisClient
import RedisTestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The built `threadweave` against a private redis-server that runs the
/// project's ACL (k8s/base/redis/users.acl.template): `default` off, the
/// runtime user `threadweave`, the set-up user `threadweave-setup`, passwords
/// made per test and handed over in files (REDIS_PASSWORD_FILE).
@Suite(.serialized) struct RedisLeastPrivilegeTests {
    @Test(.timeLimit(.minutes(2))) func wrongCredentialsStopEveryLongRunningSubcommandAtOnceNamingTheUser() async throws {
        try await ACLTestServer.with(namespace: TestRedis.uniqueNamespace("acl")) { acl in
            let wrongPassword = "not-the-password-\(UInt32.random(in: 0...UInt32.max))"
            let wrongFile = try temporaryFile(contents: wrongPassword + "\n")
            defer { try? FileManager.default.removeItem(at: wrongFile) }
            let port = String(try freeLoopbackPort())
            let subcommands = [
                ["serve", "--port", port], ["function", "create-thread", "--port", port], ["worker", "--port", port],
                ["setup"], ["rebuild"], ["reclaim"],
            ]
            for subcommand in subcommands {
                let started = ContinuousClock.now
                let (status, errors) = try await runThreadweave(
                    subcommand + ["--redis-url", acl.url(user: ACLTestServer.runtimeUser), "--namespace", acl.namespace],
                    environment: environment(["REDIS_PASSWORD_FILE": wrongFile.path]))
                #expect(status != 0, "\(subcommand[0]) exits non-zero")
                #expect(
                    errors.contains("Redis refused the credentials for user 'threadweave' (WRONGPASS)"),
                    "\(subcommand[0]) says why: \(errors)")
                #expect(!errors.contains(wrongPassword), "\(subcommand[0]) never prints the password")
                #expect(errors.split(separator: "\n").count <= 2, "one clear line, not a retry log: \(errors)")
                // No retry loop: a refused password is final (serve and function retry an unreachable Redis for 30 s).
                #expect(ContinuousClock.now - started < .seconds(10), "\(subcommand[0]) fails fast")
            }

            // An unknown user is refused the same way, by name; no credentials at all get NOAUTH explained.
            let (unknownStatus, unknown) = try await runThreadweave(
                ["worker", "--redis-url", acl.url(user: "nobody"), "--port", port],
                environment: environment(["REDIS_PASSWORD_FILE": wrongFile.path]))
            #expect(unknownStatus != 0 && unknown.contains("Redis refused the credentials for user 'nobody' (WRONGPASS)"))
            let (anonymousStatus, anonymous) = try await runThreadweave(["setup", "--redis-url", acl.url], environment: environment())
            #expect(anonymousStatus != 0 && anonymous.contains("Redis requires authentication (NOAUTH)"))

            // A password in the URL and in a file: refused rather than guessing which one wins.
            let (twiceStatus, twice) = try await runThreadweave(
                ["setup", "--redis-url", acl.url.replacingOccurrences(of: "redis://", with: "redis://threadweave:inline@")],
                environment: environment(["REDIS_PASSWORD_FILE": wrongFile.path]))
            #expect(twiceStatus != 0 && twice.contains("given twice") && !twice.contains("inline"))
        }
    }

    @Test(.timeLimit(.minutes(3))) func theWholeScenarioRunsAsTheRuntimeUserAfterSetUpAsTheSetUpUser() async throws {
        try await ACLTestServer.with(namespace: TestRedis.uniqueNamespace("acl")) { acl in
            let setupEnvironment = environment(["REDIS_PASSWORD_FILE": acl.setupPasswordFile])
            let runtimeEnvironment = environment(["REDIS_PASSWORD_FILE": acl.runtimePasswordFile])
            let asSetup = ["--redis-url", acl.url(user: ACLTestServer.setupUser), "--namespace", acl.namespace]
            let asRuntime = ["--redis-url", acl.url(user: ACLTestServer.runtimeUser), "--namespace", acl.namespace]

            // The runtime user may not set up (FUNCTION LOAD); the set-up user may.
            let (refusedStatus, refused) = try await runThreadweave(["setup"] + asRuntime, environment: runtimeEnvironment)
            #expect(refusedStatus != 0 && refused.contains("NOPERM"), "\(refused)")
            let (setupStatus, setupErrors) = try await runThreadweave(["setup"] + asSetup, environment: setupEnvironment)
            #expect(setupStatus == 0, "setup as threadweave-setup: \(setupErrors)")

            // The README walk-through through `serve` (gateway and worker) as the runtime user.
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tw-acl-serve-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let log = directory.appendingPathComponent("serve.log")
            let port = try freeLoopbackPort()
            let serve = try ThreadweaveChild(
                ["serve", "--port", String(port)] + asRuntime, environment: runtimeEnvironment, log: log)
            defer { serve.signal(SIGKILL) }
            let base = "http://127.0.0.1:\(port)"
            #expect(await serve.waitForStatus(200, at: base + "/readyz"), "serve became ready as the runtime user")
            let (walkthroughStatus, transcript) = try await runWalkthrough(base: base, directory: directory)
            #expect(walkthroughStatus == 0, "walk-through failed under the runtime ACL:\n\(transcript.suffix(3000))")
            #expect(transcript.contains("walk-through complete"))
            await serve.stop()
            let serveLog = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            #expect(!serveLog.contains("NOPERM"), "nothing the scenario does is outside the ACL:\n\(serveLog.suffix(3000))")
            #expect(!serveLog.contains(acl.runtimePassword))

            // Maintenance: rebuild as the set-up user, reclaim as the runtime user.
            let (rebuildStatus, rebuildErrors) = try await runThreadweave(["rebuild"] + asSetup, environment: setupEnvironment)
            #expect(rebuildStatus == 0, "rebuild as threadweave-setup: \(rebuildErrors)")
            let (reclaimStatus, reclaimErrors) = try await runThreadweave(["reclaim"] + asRuntime, environment: runtimeEnvironment)
            #expect(reclaimStatus == 0, "reclaim as threadweave: \(reclaimErrors)")

            // The runtime user is refused whatever lies outside its ACL, and the data survives the attempts.
            let runtime = try pool(acl.url(user: ACLTestServer.runtimeUser), password: acl.runtimePassword)
            for command in [
                RedisCommand("FLUSHALL"), RedisCommand("FLUSHDB"), RedisCommand("KEYS", "*"), RedisCommand("CONFIG", "GET", "*"),
                RedisCommand("SET", "elsewhere:key", "x"), RedisCommand("GET", "\(acl.namespace)-other:config"),
                StoreSetupCommands.load, RedisCommand("SCAN", "0"),
            ] {
                let error = await #expect(throws: RedisError.self) { try await runtime.send(command) }
                #expect(error?.isPermissionDenied == true, "\(command.name): \(error?.message ?? "allowed")")
            }
            #expect(try await runtime.send(RedisCommand("HGET", "\(acl.namespace):config", "partitions")).int == 64)
            // The workers read Redis's clock after their applies (the read-model lag); a refusal would not show in the log.
            #expect(try await runtime.send(RedisCommand("TIME")).array?.count == 2)
            await runtime.shutdown()
        }
    }

    @Test(.timeLimit(.minutes(2))) func aMissingLibraryAnswers503AndIsReportedOnceUntilSetUpRuns() async throws {
        try await ACLTestServer.with(namespace: TestRedis.uniqueNamespace("acl")) { acl in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tw-acl-fn-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let log = directory.appendingPathComponent("function.log")
            let port = try freeLoopbackPort()
            let function = try ThreadweaveChild(
                [
                    "function", "create-thread", "--host", "127.0.0.1", "--port", String(port), "--namespace", acl.namespace,
                    "--redis-url", acl.url(user: ACLTestServer.runtimeUser),
                ],
                environment: environment(["REDIS_PASSWORD_FILE": acl.runtimePasswordFile]), log: log)
            defer { function.signal(SIGKILL) }
            let base = "http://127.0.0.1:\(port)"
            #expect(await function.waitForStatus(200, at: base + "/healthz"))

            let body = ["accountId": "01HZ0000000000000000A11CE0", "title": "before set-up"]
            for _ in 0..<3 {
                let (status, retryAfter, reply) = try await post(base + "/", body)
                #expect(status == 503, "no library, and this user may not load it: unavailable, not a crash")
                #expect(retryAfter != nil)
                #expect(((reply["error"] as? [String: Any])?["code"] as? String) == "unavailable")
            }
            #expect(function.isRunning)
            let reminders = ((try? String(contentsOf: log, encoding: .utf8)) ?? "").components(separatedBy: "run `threadweave setup` as the set-up user")
            #expect(reminders.count - 1 == 1, "the missing library is reported once, not per request")

            // Set-up by the set-up user: the same process serves without a restart.
            let (setupStatus, _) = try await runThreadweave(
                ["setup", "--redis-url", acl.url(user: ACLTestServer.setupUser), "--namespace", acl.namespace],
                environment: environment(["REDIS_PASSWORD_FILE": acl.setupPasswordFile]))
            #expect(setupStatus == 0)
            let (status, _, created) = try await post(base + "/", body)
            #expect(status == 201 && created["threadId"] != nil)
            await function.stop()
        }
    }

    // MARK: - helpers

    private enum StoreSetupCommands {
        static let load = RedisCommand("FUNCTION", "LOAD", "REPLACE", "#!lua name=intruder\nredis.register_function('x', function() return 1 end)")
    }

    /// This process's environment (PATH and the like) without any Redis or ThreadWeave settings,
    /// plus `extra`. Requests are not what these tests are about: `THREADWEAVE_AUTH=none`.
    private func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        for key in environment.keys where key.hasPrefix("REDIS_") || key.hasPrefix("THREADWEAVE_") { environment[key] = nil }
        environment["THREADWEAVE_AUTH"] = "none"
        return environment.merging(extra) { $1 }
    }

    private func temporaryFile(contents: String) throws -> URL {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tw-secret-\(UUID().uuidString)")
        try Data(contents.utf8).write(to: file)
        return file
    }

    private func pool(_ url: String, password: String) throws -> RedisConnectionPool {
        var configuration = try RedisConfiguration(url: url)
        configuration.password = password
        return RedisConnectionPool(configuration: configuration, logger: Logger(label: "acl-test"))
    }

    private func post(_ url: String, _ body: [String: Any]) async throws -> (Int, String?, [String: Any]) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as? HTTPURLResponse
        return (
            http?.statusCode ?? 0, http?.value(forHTTPHeaderField: "Retry-After"),
            (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        )
    }

    private func runWalkthrough(base: String, directory: URL) async throws -> (Int32, String) {
        let walkthrough = Process()
        walkthrough.executableURL = URL(fileURLWithPath: "/bin/bash")
        walkthrough.arguments = [repositoryRoot.appendingPathComponent("scripts/walkthrough.sh").path]
        walkthrough.environment = ["BASE_URL": base, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        let output = directory.appendingPathComponent("walkthrough.out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        walkthrough.standardOutput = try FileHandle(forWritingTo: output)
        walkthrough.standardError = walkthrough.standardOutput
        try walkthrough.run()
        while walkthrough.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        return (walkthrough.terminationStatus, (try? String(contentsOf: output, encoding: .utf8)) ?? "")
    }
}
