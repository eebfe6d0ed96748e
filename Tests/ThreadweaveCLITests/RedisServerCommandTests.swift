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
        #expect(try await ping(announcement.url) == .simpleString("PONG"))

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

    private func ping(_ url: String) async throws -> RedisValue {
        let connection = try await RedisConnection.connect(
            configuration: try RedisConfiguration(url: url), eventLoop: MultiThreadedEventLoopGroup.singleton.any(),
            logger: Logger(label: "redis-server-command-test"))
        defer { connection.closeNow() }
        return try await connection.send(RedisCommand("PING"))
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
