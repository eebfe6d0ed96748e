import ArgumentParser
import EventStore
import Foundation
import Logging
import RedisClient

/// Options every subcommand shares. Flags win over the environment
/// (`REDIS_URL`, `THREADWEAVE_NAMESPACE`, `LOG_LEVEL`, `LOG_FORMAT`), which
/// is read here, once, at the edge.
struct GlobalOptions: ParsableArguments {
    @Option(help: "Redis URL: redis://[user:password@]host:port/db or unix:///path (env REDIS_URL).")
    var redisURL: String?

    @Option(help: "Key namespace (env THREADWEAVE_NAMESPACE, default tw).")
    var namespace: String?

    @Option(help: "Partitions at first set-up (default 64; fixed afterwards, read from <namespace>:config).")
    var partitions: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (env LOG_LEVEL).")
    var logLevel: String?

    @Option(help: "Log format: text or json (env LOG_FORMAT).")
    var logFormat: String?

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    var resolvedRedisURL: String? { redisURL ?? environment["REDIS_URL"].flatMap { $0.isEmpty ? nil : $0 } }
    var resolvedNamespace: String { namespace ?? environment["THREADWEAVE_NAMESPACE"] ?? KeyLayout.defaultNamespace }

    func validate() throws {
        let namespace = resolvedNamespace
        guard KeyLayout.isValidNamespace(namespace) else {
            throw ValidationError(
                "invalid namespace '\(namespace)' (--namespace or THREADWEAVE_NAMESPACE): use 1–64 characters of A–Z a–z 0–9 _ . -")
        }
    }

    func redisConfiguration(defaultURL: String = "redis://127.0.0.1:6379") throws -> RedisConfiguration {
        do {
            return try RedisConfiguration(url: resolvedRedisURL ?? defaultURL)
        } catch {
            throw ValidationError("invalid Redis URL: \(error.message)")
        }
    }

    func makeLogger(label: String) -> Logger {
        let level = (logLevel ?? environment["LOG_LEVEL"]).flatMap(Logger.Level.init(rawValue:)) ?? .info
        let json = (logFormat ?? environment["LOG_FORMAT"])?.lowercased() == "json"
        LoggingSystem.bootstrapOnce(json: json)
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}
