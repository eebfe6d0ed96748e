import Foundation
import LocalRedis
import RedisTestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// What a newcomer does: `threadweave serve` with no Redis URL (so it starts
/// its own redis-server), then the README's curl walk-through against it.
/// SIGTERM must stop serve cleanly and take its redis-server child with it.
@Suite struct ServeWalkthroughTests {
    @Test func theReadmeWalkthroughPassesAgainstServeWithItsOwnRedis() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tw-serve-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let dataDirectory = directory.appendingPathComponent("redis").path
        let port = try freeLoopbackPort()

        let serve = Process()
        serve.executableURL = try FunctionProcess.binary()
        serve.arguments = ["serve", "--port", String(port), "--data-dir", dataDirectory, "--log-level", "warning"]
        var environment = ProcessInfo.processInfo.environment
        environment["REDIS_URL"] = nil
        serve.environment = environment
        serve.standardOutput = FileHandle.nullDevice
        serve.standardError = FileHandle.nullDevice
        try serve.run()
        defer { if serve.isRunning { serve.terminate() } }

        let base = "http://127.0.0.1:\(port)"
        #expect(await waitForReady(base), "serve became ready with its own redis-server")
        #expect(redisServers(using: dataDirectory).count == 1, "one private redis-server, on our data dir")

        let (status, transcript) = try await runWalkthrough(
            base: base, environment: ["PATH": environment["PATH"] ?? "/usr/bin:/bin"], output: directory)
        #expect(status == 0, "walk-through failed:\n\(transcript.suffix(3000))")

        serve.terminate()
        for _ in 0..<200 where serve.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(serve.isRunning == false && serve.terminationStatus == 0, "serve stops gracefully on SIGTERM")
        for _ in 0..<100 where !redisServers(using: dataDirectory).isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        #expect(redisServers(using: dataDirectory).isEmpty, "serve stopped its redis-server")
        #expect(FileManager.default.fileExists(atPath: dataDirectory + "/appendonlydir"), "the private server kept an AOF")
    }

    /// The walk-through in jwt mode against `serve` logging at info, on a Redis
    /// that requires a password: every request carries a token minted by
    /// `threadweave token`, a request without one is refused, and the log
    /// holds no token, secret, password or message text.
    @Test func theWalkthroughPassesInJWTModeAndTheLogKeepsNoSecrets() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tw-serve-jwt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let secret = "walkthrough-secret-\(UUID().uuidString)"
        let secretFile = directory.appendingPathComponent("jwt-secret")
        try (secret + "\n").write(to: secretFile, atomically: true, encoding: .utf8)
        let port = try freeLoopbackPort()
        let password = "redis-password-\(UUID().uuidString)"
        try await RedisTestServer.with(arguments: ["--requirepass", password]) { redis in

            let log = directory.appendingPathComponent("serve.log")
            let environment = ProcessInfo.processInfo.environment
            let serve = try startServe(port: port, logLevel: "info", log: log, environment: [
                "REDIS_URL": "redis://:\(password)@127.0.0.1:\(redis.port)", "THREADWEAVE_AUTH": "jwt",
                "THREADWEAVE_JWT_SECRET_FILE": secretFile.path,
            ])
            defer { if serve.isRunning { serve.terminate() } }

            let base = "http://127.0.0.1:\(port)"
            #expect(await waitForReady(base), "serve became ready in jwt mode")
            let (status, transcript) = try await runWalkthrough(
                base: base,
                environment: [
                    "PATH": environment["PATH"] ?? "/usr/bin:/bin",
                    "TOKEN_COMMAND": "\(try FunctionProcess.binary().path) token",
                    "THREADWEAVE_JWT_SECRET_FILE": secretFile.path,
                ],
                output: directory)
            #expect(status == 0, "walk-through failed:\n\(transcript.suffix(3000))")
            #expect(transcript.contains("expected 401") == false && transcript.contains("< 401"), "a request without a token got 401")

            serve.terminate()
            for _ in 0..<200 where serve.isRunning { try await Task.sleep(for: .milliseconds(50)) }
            let logged = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            #expect(logged.contains("authentication: jwt"), "the log says which mode runs")
            #expect(!logged.contains(secret), "the secret is not logged")
            #expect(!logged.contains(password), "the Redis password is not logged")
            #expect(!logged.contains("eyJ"), "no token (base64url JSON) is logged")
            for text in ["Launch plan", "Hello!", "Agenda attached", "Welcome", "sent once", "by name"] {
                #expect(!logged.contains(text), "message text '\(text)' is not logged")
            }
        }
    }

    /// The walk-through against `serve` on a Redis Cluster (`make test-cluster`):
    /// set-up loads the libraries on every primary, commands and queries go to
    /// the nodes of their partitions, and the worker reads every partition's
    /// log on its own node (the walk-through waits on the read model).
    @Test(.enabled(if: TestRedis.isCluster, "needs make test-cluster"))
    func theWalkthroughPassesAgainstServeOnARedisCluster() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tw-serve-cluster-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = try freeLoopbackPort()

        let log = directory.appendingPathComponent("serve.log")
        let environment = ProcessInfo.processInfo.environment
        let serve = try startServe(port: port, logLevel: "warning", log: log, environment: [
            "REDIS_URL": TestRedis.url, "THREADWEAVE_NAMESPACE": TestRedis.uniqueNamespace(),
        ])
        defer { if serve.isRunning { serve.terminate() } }

        let base = "http://127.0.0.1:\(port)"
        #expect(await waitForReady(base), "serve became ready on the cluster")
        let (status, transcript) = try await runWalkthrough(
            base: base, environment: ["PATH": environment["PATH"] ?? "/usr/bin:/bin"], output: directory)
        let logged = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(status == 0, "walk-through failed:\n\(transcript.suffix(3000))\nserve log:\n\(logged.suffix(3000))")

        serve.terminate()
        for _ in 0..<200 where serve.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(serve.isRunning == false && serve.terminationStatus == 0, "serve stops gracefully on SIGTERM")
    }

    /// `threadweave serve` on `port`, this process's environment plus `environment`, its output in `log`.
    private func startServe(port: Int, logLevel: String, log: URL, environment: [String: String]) throws -> Process {
        let serve = Process()
        serve.executableURL = try FunctionProcess.binary()
        serve.arguments = ["serve", "--port", String(port), "--log-level", logLevel]
        serve.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        serve.standardOutput = try FileHandle(forWritingTo: log)
        serve.standardError = serve.standardOutput
        try serve.run()
        return serve
    }

    private func runWalkthrough(base: String, environment: [String: String], output directory: URL) async throws -> (Int32, String) {
        let walkthrough = Process()
        walkthrough.executableURL = URL(fileURLWithPath: "/bin/bash")
        walkthrough.arguments = [scriptsDirectory().appendingPathComponent("walkthrough.sh").path]
        walkthrough.environment = environment.merging(["BASE_URL": base]) { $1 }
        let output = directory.appendingPathComponent("walkthrough-\(UUID().uuidString).out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        walkthrough.standardOutput = try FileHandle(forWritingTo: output)
        walkthrough.standardError = walkthrough.standardOutput
        try walkthrough.run()
        while walkthrough.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        let transcript = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        #expect(transcript.contains("walk-through complete"))
        return (walkthrough.terminationStatus, transcript)
    }

    private func waitForReady(_ base: String) async -> Bool {
        for _ in 0..<300 {
            if let url = URL(string: base + "/readyz"), let (_, response) = try? await URLSession.shared.data(from: url),
                (response as? HTTPURLResponse)?.statusCode == 200
            {
                return true
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    private func scriptsDirectory() -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts")
    }
}
