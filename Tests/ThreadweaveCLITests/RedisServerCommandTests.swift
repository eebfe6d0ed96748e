import Foundation
import Logging
import NIOPosix
import RedisClient
import Testing

/// `threadweave redis-server`, the scripts' launcher: one JSON line, a server at
/// that URL, and no server left once its launcher is gone, however it ends.
@Suite(.timeLimit(.minutes(2))) struct RedisServerCommandTests {
    struct Announcement: Decodable {
        var url: String
        var pid: Int32
        var port: Int?
        var dataDir: String
    }

    @Test func printsWhereTheServerIsAndStopsItWhenStdinCloses() async throws {
        let launcher = try await Launcher(["redis-server", "--log-level", "error", "--", "--appendonly", "yes"])
        let announcement = launcher.announcement
        let port = try #require(announcement.port)
        #expect(announcement.url == "redis://127.0.0.1:\(port)")
        #expect(try await send(announcement.url, "PING") == .simpleString("PONG"))

        try launcher.input.fileHandleForWriting.close()
        #expect(await launcher.child.waitForExit() == 0)
        #expect(kill(announcement.pid, 0) != 0, "redis-server is gone")
        #expect(!FileManager.default.fileExists(atPath: announcement.dataDir), "the temporary data directory is removed")
    }

    @Test func sigtermStopsTheServerAndAKilledLauncherTakesItsServerWithIt() async throws {
        let terminated = try await Launcher(["redis-server", "--log-level", "error"])
        terminated.child.signal(SIGTERM)
        #expect(await terminated.child.waitForExit() == 0)
        #expect(kill(terminated.announcement.pid, 0) != 0)

        let killed = try await Launcher(["redis-server", "--log-level", "error"])
        killed.child.signal(SIGKILL)
        _ = await killed.child.waitForExit()
        let deadline = ContinuousClock.now + .seconds(10)
        while kill(killed.announcement.pid, 0) == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(kill(killed.announcement.pid, 0) != 0, "the supervisor saw its lifeline close and stopped Redis")
        try? FileManager.default.removeItem(atPath: killed.announcement.dataDir)
    }

    @Test func withIgnoreStdinOnlyASignalStopsTheServer() async throws {
        let launcher = try await Launcher(["redis-server", "--log-level", "error", "--ignore-stdin"])
        try launcher.input.fileHandleForWriting.close()
        try await Task.sleep(for: .milliseconds(500))
        #expect(launcher.child.isRunning, "stdin closed, yet the launcher runs on")
        #expect(try await send(launcher.announcement.url, "PING") == .simpleString("PONG"))
        launcher.child.signal(SIGTERM)
        #expect(await launcher.child.waitForExit() == 0)
        #expect(kill(launcher.announcement.pid, 0) != 0)
    }

    /// What scripts/chaos.py does with it: Redis SIGKILLed from outside ends its launcher at once,
    /// with a failure; a launcher on the same port and data announces the restarted server as soon
    /// as it listens, while it still answers -LOADING, and the data comes back.
    @Test func aKilledServerEndsItsLauncherAndARestartOnItsPortIsAnnouncedWhileLoading() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("threadweave-redis-command-test.\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        // 2,000 keys in the AOF's RDB base, 1 ms each to load (events served every KiB): LOADING for ~2 s.
        let common = ["redis-server", "--log-level", "error", "--data-dir", directory.path]
        let redisArguments = ["--", "--appendonly", "yes", "--key-load-delay", "1000", "--loading-process-events-interval-bytes", "1024"]
        let first = try await Launcher(common + redisArguments)
        let url = first.announcement.url
        let port = try #require(first.announcement.port)
        _ = try await send(url, "EVAL", "for i=1,2000 do redis.call('SET','k'..i,'v'..i) end return 1", "0")
        _ = try await send(url, "BGREWRITEAOF")
        func rewritten() async throws -> Bool {
            let persistence = try await send(url, "INFO", "persistence").string ?? ""
            return persistence.contains("aof_rewrite_in_progress:0") && persistence.contains("aof_rewrite_scheduled:0")
        }
        let deadline = ContinuousClock.now + .seconds(20)
        while try await !rewritten(), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }

        kill(first.announcement.pid, SIGKILL)
        #expect(await first.child.waitForExit(timeout: .seconds(5)) == 1, "the launcher fails at once, not at its stdin's end")

        let second = try await Launcher(common + ["--port", "\(port)", "--ready-when", "listening"] + redisArguments)
        #expect(second.announcement.url == url)
        #expect(second.announcement.pid != first.announcement.pid)
        await #expect("announced while loading") {
            _ = try await send(url, "PING")
        } throws: { error in
            (error as? RedisError)?.serverErrorPrefix == "LOADING"
        }
        let loaded = ContinuousClock.now + .seconds(30)
        while (try? await send(url, "PING")) != .simpleString("PONG"), ContinuousClock.now < loaded {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await send(url, "GET", "k2000").string == "v2000", "the restart replayed the data directory")
        try second.input.fileHandleForWriting.close()
        #expect(await second.child.waitForExit() == 0)
    }

    /// A launcher child with a pipe as stdin, and what it printed once the server answered.
    struct Launcher {
        let child: ThreadweaveChild
        let input: Pipe
        let announcement: Announcement

        init(_ arguments: [String]) async throws {
            input = Pipe()
            let output = Pipe()
            child = try ThreadweaveChild(arguments, standardInput: input, standardOutput: output)
            let line = try await firstLine(of: output.fileHandleForReading.fileDescriptor, timeout: .seconds(30))
            announcement = try JSONDecoder().decode(Announcement.self, from: Data(line.utf8))
        }
    }

    private func send(_ url: String, _ arguments: String...) async throws -> RedisValue {
        let connection = try await RedisConnection.connect(
            configuration: try RedisConfiguration(url: url), eventLoop: MultiThreadedEventLoopGroup.singleton.any(),
            logger: Logger(label: "redis-server-command-test"))
        defer { connection.closeNow() }
        return try await connection.send(RedisCommand(arguments))
    }
}

/// The first line written to `descriptor`, read without blocking a cooperative thread.
private func firstLine(of descriptor: Int32, timeout: Duration) async throws -> String {
    _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 256)
    let deadline = ContinuousClock.now + timeout
    while !bytes.contains(UInt8(ascii: "\n")) {
        let count = read(descriptor, &buffer, buffer.count)
        if count > 0 {
            bytes += buffer[..<count]
        } else if count == 0 || ContinuousClock.now >= deadline {
            throw CancellationError()
        } else {
            try await Task.sleep(for: .milliseconds(20))
        }
    }
    return String(decoding: bytes.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
}
