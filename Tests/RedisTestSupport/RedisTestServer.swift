public import Foundation
public import LocalRedis
import Logging

/// A private `redis-server` child for tests that need a server of their own
/// (restart, outage, failover, odd configuration): `withLocalRedisServer` on a
/// free loopback port, with its data in a fresh temporary directory removed
/// afterwards. Only this process's own child is ever signalled.
public struct RedisTestServer: Sendable {
    public let port: Int
    public var directory: URL { server.directory }
    public var url: String { server.url }
    private let server: LocalRedisServer

    /// Runs `body` with a server started with `arguments` added to its command line; `access` is
    /// how the readiness probe gets in (credentials for an ACL, TLS for a TLS-only port).
    public static func with<Result>(
        arguments: [String] = [], access: LocalRedisServer.Access = .init(), _ body: (RedisTestServer) async throws -> Result
    ) async throws -> Result {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("threadweave-test-redis-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var logger = Logger(label: "redis-test-server")
        logger.logLevel = .warning
        return try await withLocalRedisServer(directory: directory, arguments: arguments, access: access, logger: logger) {
            server in
            guard case .tcp(_, let port) = server.endpoint else { preconditionFailure("a loopback port was asked for") }
            return try await body(RedisTestServer(port: port, server: server))
        }
    }

    /// Starts the server again on the same port and data directory (after `kill()`).
    public func restart() async throws {
        try await server.restart()
    }

    /// Stops the server with SIGKILL and waits for it to exit: an outage at once,
    /// and the server keeps no data worth a clean exit.
    public func kill() async {
        await server.kill()
    }
}

/// The server shared by a test run: the one `make test` (through
/// `scripts/with_redis.py`) started and named in `$TEST_REDIS_URL`. Tests
/// isolate themselves with `uniqueNamespace()`, never with FLUSHALL.
public enum TestRedis {
    public static var url: String {
        guard let url = ProcessInfo.processInfo.environment["TEST_REDIS_URL"], !url.isEmpty else {
            fatalError("TEST_REDIS_URL is unset: run the tests with `make test` or `scripts/with_redis.py swift test`")
        }
        return url
    }

    /// True under `make test-cluster` (`scripts/with_redis_cluster.py`): the
    /// URL names one node of a Redis Cluster of three primaries and three replicas.
    public static var isCluster: Bool {
        ProcessInfo.processInfo.environment["TEST_REDIS_CLUSTER"] == "1"
    }

    /// The ports of every node of that cluster.
    public static var clusterPorts: [Int] {
        (ProcessInfo.processInfo.environment["TEST_REDIS_CLUSTER_PORTS"] ?? "").split(separator: ",").compactMap { Int($0) }
    }

    /// A fresh key namespace, so concurrent tests never see each other's keys.
    public static func uniqueNamespace(_ prefix: String = "t") -> String {
        "\(prefix)\(UInt64.random(in: 0...UInt64.max) % 1_000_000_000_000)"
    }
}
