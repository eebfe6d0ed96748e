import Foundation
import LocalRedis
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `serve`'s own redis-server is private to this user, dies with `serve`, and
/// never runs twice on one data directory.
@Suite(.timeLimit(.minutes(2))) struct PrivateRedisTests {
    @Test func thePrivateServerIsPrivateDiesWithServeAndIsNeverShared() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tw-private-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let dataDirectory = directory.appendingPathComponent("redis").path

        let (first, port) = try serve(dataDirectory)
        defer { first.signal(SIGKILL) }
        #expect(await ready(port), "serve became ready with its own redis-server")
        let servers = redisServers(using: dataDirectory)
        #expect(servers.count == 1)

        // Reachable by this user only: no TCP port, a 0700 directory, private files.
        let socket = dataDirectory + "/redis.sock"
        #expect(FileManager.default.fileExists(atPath: socket))
        for pid in servers {
            #expect(!listensOnTCP(pid), "the private redis-server listens on no TCP port")
        }
        #expect(try mode(of: dataDirectory) == 0o700)
        for name in try FileManager.default.subpathsOfDirectory(atPath: dataDirectory) {
            #expect(try mode(of: dataDirectory + "/" + name) & 0o077 == 0, "\(name) is private")
        }

        // A second serve on the same directory is refused while the first runs.
        let (second, _) = try serve(dataDirectory)
        defer { second.signal(SIGKILL) }
        let status = await second.waitForExit(timeout: .seconds(20))
        #expect(status != nil && status != 0, "a second serve on the same data dir exits with an error")
        #expect(redisServers(using: dataDirectory) == servers, "and starts no second redis-server")

        // SIGKILL of serve takes its redis-server with it, and frees the directory.
        first.signal(SIGKILL)
        _ = await first.waitForExit()
        let deadline = ContinuousClock.now + .seconds(10)
        while !redisServers(using: dataDirectory).isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(redisServers(using: dataDirectory).isEmpty, "redis-server stopped after serve was killed")
        let (third, thirdPort) = try serve(dataDirectory)
        defer { third.signal(SIGKILL) }
        #expect(await ready(thirdPort), "the directory is free again")
        await third.stop()
    }

    private func serve(_ dataDirectory: String) throws -> (child: ThreadweaveChild, port: Int) {
        let port = try freeLoopbackPort()
        var environment = ProcessInfo.processInfo.environment
        environment["REDIS_URL"] = nil
        let child = try ThreadweaveChild(
            ["serve", "--port", String(port), "--data-dir", dataDirectory, "--log-level", "error"], environment: environment)
        return (child, port)
    }

    private func ready(_ port: Int) async -> Bool {
        for _ in 0..<300 {
            let url = URL(string: "http://127.0.0.1:\(port)/readyz")!
            if let (_, response) = try? await URLSession.shared.data(from: url), (response as? HTTPURLResponse)?.statusCode == 200 {
                return true
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    private func mode(of path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int ?? -1) & 0o777
    }

    /// True when one of the process's sockets is a listening TCP socket (state 0A in /proc/net/tcp*).
    private func listensOnTCP(_ pid: Int32) -> Bool {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        let inodes = Set(descriptors.compactMap { fd -> String? in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                target.hasPrefix("socket:[")
            else { return nil }
            return String(target.dropFirst("socket:[".count).dropLast())
        })
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let lines = ((try? String(contentsOfFile: table, encoding: .utf8)) ?? "").split(separator: "\n").dropFirst()
            for line in lines {
                let fields = line.split(separator: " ")
                if fields.count > 9, fields[3] == "0A", inodes.contains(String(fields[9])) { return true }
            }
        }
        return false
    }
}
