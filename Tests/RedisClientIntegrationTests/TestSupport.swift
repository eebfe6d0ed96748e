import Logging
import NIOPosix
import RedisClient
import RedisTestSupport

let testLogger = Logger(label: "RedisClientTests")

/// A connection to the shared test server (or `url`), with configuration tweaks.
func connect(
    url: String = TestRedis.url, _ adjust: (inout RedisConfiguration) -> Void = { _ in }
) async throws -> RedisConnection {
    var configuration = try RedisConfiguration(url: url)
    adjust(&configuration)
    return try await RedisConnection.connect(
        configuration: configuration, eventLoop: MultiThreadedEventLoopGroup.singleton.next(), logger: testLogger)
}

/// Runs `body` with a connection, closing it afterwards.
func withConnection<T>(
    url: String = TestRedis.url, _ adjust: (inout RedisConfiguration) -> Void = { _ in },
    _ body: (RedisConnection) async throws -> T
) async throws -> T {
    let connection = try await connect(url: url, adjust)
    do {
        let result = try await body(connection)
        await connection.close()
        return result
    } catch {
        await connection.close()
        throw error
    }
}

/// Runs `body` with a pool on `url`, shutting the pool down afterwards.
func withPool<T>(
    url: String = TestRedis.url, _ adjust: (inout RedisConfiguration) -> Void = { _ in },
    _ body: (RedisConnectionPool) async throws -> T
) async throws -> T {
    var configuration = try RedisConfiguration(url: url)
    adjust(&configuration)
    let pool = RedisConnectionPool(configuration: configuration, logger: testLogger)
    do {
        let result = try await body(pool)
        await pool.shutdown()
        return result
    } catch {
        await pool.shutdown()
        throw error
    }
}

/// Runs `body` with a private redis-server, destroyed afterwards.
func withPrivateServer<T>(
    arguments: [String] = [], _ body: (RedisTestServer) async throws -> T
) async throws -> T {
    try await RedisTestServer.with(arguments: arguments, body)
}
