import ArgumentParser
import EventStore
import Foundation
import Logging
import RedisClient

/// Options every subcommand shares. Flags win over the environment
/// (`REDIS_URL`, `REDIS_CLUSTER_NODES`, `REDIS_PASSWORD_FILE`, `REDIS_TLS_*_FILE`, `THREADWEAVE_NAMESPACE`,
/// `LOG_LEVEL`, `LOG_FORMAT`), which is read here, once, at the edge; so are
/// the files they name.
struct GlobalOptions: ParsableArguments {
    @Option(help: "Redis URL: redis[s]://[user[:password]@]host:port/db or unix:///path (env REDIS_URL).")
    var redisURL: String?

    @Option(help: "More Redis Cluster nodes to learn the slot map from, host:port,… (env REDIS_CLUSTER_NODES); one node of REDIS_URL is enough.")
    var redisClusterNodes: String?

    @Option(help: "File holding the Redis password, one line (env REDIS_PASSWORD_FILE); not with a password in the URL.")
    var redisPasswordFile: String?

    @Option(
        name: .customLong("redis-tls-ca-file"),
        help: "PEM CA certificates that verify a rediss:// server (env REDIS_TLS_CA_FILE; default: the system's).")
    var redisTLSCAFile: String?

    @Option(
        name: .customLong("redis-tls-cert-file"),
        help: "PEM client certificate for mutual TLS, with --redis-tls-key-file (env REDIS_TLS_CERT_FILE).")
    var redisTLSCertificateFile: String?

    @Option(name: .customLong("redis-tls-key-file"), help: "PEM private key of the client certificate (env REDIS_TLS_KEY_FILE).")
    var redisTLSKeyFile: String?

    @Option(help: "Key namespace (env THREADWEAVE_NAMESPACE, default tw).")
    var namespace: String?

    @Option(help: "Partitions at first set-up (default 64; fixed afterwards, read from <namespace>:config).")
    var partitions: Int?

    @OptionGroup var logging: LoggingOptions

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

    /// The flag, else the environment variable; empty counts as unset.
    private func setting(_ flag: String?, _ variable: String) -> String? {
        flag ?? environment[variable].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The URL with the password file and TLS files applied. A password given
    /// both in the URL and in a file is refused: which one wins would be a guess.
    func redisConfiguration(defaultURL: String = "redis://127.0.0.1:6379") throws -> RedisConfiguration {
        var configuration: RedisConfiguration
        do {
            configuration = try RedisConfiguration(url: resolvedRedisURL ?? defaultURL)
        } catch {
            throw ValidationError(error.message)
        }
        if let nodes = setting(redisClusterNodes, "REDIS_CLUSTER_NODES") {
            do {
                configuration.clusterSeeds = try ClusterNode.list(nodes)
            } catch {
                throw ValidationError("REDIS_CLUSTER_NODES (--redis-cluster-nodes): \(error.message)")
            }
        }
        if let path = setting(redisPasswordFile, "REDIS_PASSWORD_FILE") {
            guard configuration.password == nil else {
                throw ValidationError(
                    "the Redis password is given twice, in the Redis URL and in REDIS_PASSWORD_FILE (--redis-password-file): give it once")
            }
            configuration.password = try Self.readPassword(path)
        }
        let caFile = setting(redisTLSCAFile, "REDIS_TLS_CA_FILE")
        let certificateFile = setting(redisTLSCertificateFile, "REDIS_TLS_CERT_FILE")
        let keyFile = setting(redisTLSKeyFile, "REDIS_TLS_KEY_FILE")
        if caFile != nil || certificateFile != nil || keyFile != nil {
            guard configuration.tls != nil else {
                throw ValidationError("REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE need a rediss:// Redis URL")
            }
            do {
                configuration.tls = try RedisTLS(caFile: caFile, certificateFile: certificateFile, keyFile: keyFile)
            } catch {
                throw ValidationError(error.message)
            }
        }
        return configuration
    }

    /// The file's one line, without its line break (as `echo` or a Kubernetes Secret leaves it).
    static func readPassword(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read the Redis password file \(path)")
        }
        var password = String(decoding: data, as: UTF8.self)
        while let last = password.last, last == "\n" || last == "\r\n" || last == "\r" {
            password.removeLast()
        }
        guard !password.isEmpty else { throw ValidationError("the Redis password file \(path) is empty") }
        guard !password.contains(where: \.isNewline) else {
            throw ValidationError("the Redis password file \(path) holds more than one line")
        }
        return password
    }

    func makeLogger(label: String) -> Logger { logging.makeLogger(label: label) }
}

/// `--log-level` and `--log-format`: every subcommand's, read once here.
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (env LOG_LEVEL).")
    var logLevel: String?

    @Option(help: "Log format: text or json (env LOG_FORMAT).")
    var logFormat: String?

    func makeLogger(label: String) -> Logger {
        let environment = ProcessInfo.processInfo.environment
        let level = (logLevel ?? environment["LOG_LEVEL"]).flatMap(Logger.Level.init(rawValue:)) ?? .info
        let json = (logFormat ?? environment["LOG_FORMAT"])?.lowercased() == "json"
        LoggingSystem.bootstrapOnce(json: json)
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}
