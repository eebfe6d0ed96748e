import Foundation
import LocalRedis
import Logging
import NIOPosix
import RedisClient
import Testing

@Suite(.timeLimit(.minutes(1))) struct LocalRedisServerTests {
    @Test func restartsOnTheSameEndpointAndDataAfterACleanStop() async throws {
        try await withDirectory { directory in
            try await withLocalRedisServer(directory: directory, arguments: ["--appendonly", "yes"]) { server in
                let firstPid = try #require(server.pid)
                let url = server.url
                #expect(try await send(server, "SET", "k", "kept") == .simpleString("OK"))

                await server.stop()
                #expect(server.pid == nil)
                #expect(!isAlive(firstPid), "stop() waited for the exit")
                try await server.restart()
                #expect(server.url == url)
                #expect(server.pid != firstPid)
                #expect(try await send(server, "GET", "k").string == "kept", "SIGTERM flushed the AOF; the restart replayed it")
            }
        }
    }

    @Test func killIsAnOutageAtOnceAndTheServerCanComeBack() async throws {
        try await withDirectory { directory in
            try await withLocalRedisServer(directory: directory) { server in
                let pid = try #require(server.pid)
                await server.kill()
                #expect(server.pid == nil)
                #expect(!isAlive(pid), "kill() waited for the exit")
                await #expect(throws: RedisError.self) { try await send(server, "PING") }
                await #expect(throws: LocalRedisError.self, "a second start while one runs is refused") {
                    try await server.restart()
                    try await server.restart()
                }
                #expect(try await send(server, "PING") == .simpleString("PONG"))
            }
        }
    }

    @Test func noServerOutlivesItsScopeWhetherTheBodyReturnsOrThrows() async throws {
        try await withDirectory { directory in
            let pid = try await withLocalRedisServer(directory: directory) { server in try #require(server.pid) }
            #expect(!isAlive(pid))

            struct Failure: Error { var pid: Int32? }
            do {
                try await withLocalRedisServer(directory: directory) { server in throw Failure(pid: server.pid) }
                Issue.record("the body's error was not rethrown")
            } catch let failure as Failure {
                #expect(!isAlive(try #require(failure.pid)))
            }
        }
    }

    @Test func cancellationStopsTheChild() async throws {
        try await withDirectory { directory in
            let (pids, continuation) = AsyncStream.makeStream(of: Int32.self)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await withLocalRedisServer(directory: directory) { server in
                        continuation.yield(server.pid ?? 0)
                        try await Task.sleep(for: .seconds(3600))
                    }
                }
                var iterator = pids.makeAsyncIterator()
                let pid = try #require(await iterator.next())
                #expect(isAlive(pid))
                group.cancelAll()
                do {
                    try await group.waitForAll()
                    Issue.record("a cancelled scope returned normally")
                } catch {
                    #expect(error is CancellationError)
                }
                #expect(!isAlive(pid), "the cancelled scope stopped its redis-server before it returned")
            }
        }
    }

    @Test func aServerThatCannotStartIsReported() async throws {
        try await withDirectory { directory in
            let error = await #expect(throws: LocalRedisError.self) {
                try await withLocalRedisServer(directory: directory, arguments: ["--no-such-directive", "1"]) { _ in }
            }
            #expect(error?.description.contains(directory.appendingPathComponent("redis.log").path) == true)
        }
    }

    @Test func aUnixSocketServerWritesOnlyPrivateFiles() async throws {
        let socketPath = "/tmp/tw-local-redis-\(UUID().uuidString.prefix(8)).sock"
        defer { try? FileManager.default.removeItem(atPath: socketPath) }
        try await withDirectory { directory in
            try await withLocalRedisServer(
                directory: directory, listener: .unixSocket(path: socketPath), arguments: ["--appendonly", "yes"]
            ) { server in
                #expect(server.url == "unix://\(socketPath)")
                #expect(try await send(server, "SET", "k", "v") == .simpleString("OK"))
                for name in try FileManager.default.subpathsOfDirectory(atPath: directory.path) {
                    let path = directory.appendingPathComponent(name).path
                    let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
                    #expect(mode & 0o077 == 0, "\(name) is private (umask 077)")
                }
            }
        }
    }

    private func isAlive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 }

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
