import Foundation
import LocalRedis
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

        let walkthrough = Process()
        walkthrough.executableURL = URL(fileURLWithPath: "/bin/bash")
        walkthrough.arguments = [scriptsDirectory().appendingPathComponent("walkthrough.sh").path]
        walkthrough.environment = ["BASE_URL": base, "PATH": environment["PATH"] ?? "/usr/bin:/bin"]
        let output = directory.appendingPathComponent("walkthrough.out")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        walkthrough.standardOutput = try FileHandle(forWritingTo: output)
        walkthrough.standardError = walkthrough.standardOutput
        try walkthrough.run()
        while walkthrough.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        let transcript = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        #expect(walkthrough.terminationStatus == 0, "walk-through failed:\n\(transcript.suffix(3000))")
        #expect(transcript.contains("walk-through complete"))

        serve.terminate()
        for _ in 0..<200 where serve.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(serve.isRunning == false && serve.terminationStatus == 0, "serve stops gracefully on SIGTERM")
        for _ in 0..<100 where !redisServers(using: dataDirectory).isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        #expect(redisServers(using: dataDirectory).isEmpty, "serve stopped its redis-server")
        #expect(FileManager.default.fileExists(atPath: dataDirectory + "/appendonlydir"), "the private server kept an AOF")
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
