import Foundation
import LocalRedis
import Logging
import NIOPosix
import RedisClient
import Testing

@Suite(.timeLimit(.minutes(1))) struct LocalRedisServerTests {
    @Test func restartsOnTheSameEndpointAndDataAfterACleanStop() async throws {
        try await withDirectory { directory in
            let server = try await LocalRedisServer.start(directory: directory, arguments: ["--appendonly", "yes"])
            defer { server.kill() }
            let firstPid = try #require(server.pid)
            let url = server.url
            #expect(try await send(server, "SET", "k", "kept") == .simpleString("OK"))

            await server.stop()
            #expect(server.pid == nil)
            try await server.restart()
            #expect(server.url == url)
            #expect(server.pid != firstPid)
            #expect(try await send(server, "GET", "k").string == "kept", "SIGTERM flushed the AOF; the restart replayed it")
        }
    }

    @Test func aServerThatCannotStartIsReported() async throws {
        try await withDirectory { directory in
            let error = await #expect(throws: LocalRedisError.self) {
                try await LocalRedisServer.start(directory: directory, arguments: ["--no-such-directive", "1"])
            }
            #expect(error?.description.contains(directory.appendingPathComponent("redis.log").path) == true)
        }
    }

    @Test func underAWrapperTheWrappedPidAnswersAndStopReachesIt() async throws {
        let socketPath = "/tmp/tw-local-redis-\(UUID().uuidString.prefix(8)).sock"
        defer { try? FileManager.default.removeItem(atPath: socketPath) }
        // Redis as the wrapper's child; SIGTERM passed on, as serve's watchdog does.
        let script = #""$@" & child=$!; trap 'kill -TERM "$child"' TERM; wait "$child"; wait "$child""#
        try await withDirectory { directory in
            let server = try await LocalRedisServer.start(
                directory: directory, listener: .unixSocket(path: socketPath),
                wrapper: RedisWrapper(
                    command: ["/bin/sh", "-c", script, "wrapper"], standardInput: Pipe(),
                    standardOutput: FileHandle.nullDevice))
            #expect(server.url == "unix://\(socketPath)")
            let info = try await send(server, "INFO", "server").string ?? ""
            let redisPid = try #require(
                info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("process_id:") }
                    .flatMap { Int32($0.dropFirst("process_id:".count)) })
            #expect(redisPid != server.pid, "Redis is the wrapper's child, not ours")

            await server.stop()
            #expect(kill(redisPid, 0) != 0, "SIGTERM reached Redis through the wrapper")
        }
    }

    private func withDirectory(_ body: (URL) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tw-local-redis-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try await body(directory)
    }

    private func send(_ server: LocalRedisServer, _ arguments: String...) async throws -> RedisValue {
        let connection = try await RedisConnection.connect(
            configuration: try RedisConfiguration(url: server.url), eventLoop: MultiThreadedEventLoopGroup.singleton.any(),
            logger: Logger(label: "local-redis-test"))
        defer { connection.closeNow() }
        return try await connection.send(RedisCommand(arguments))
    }
}
