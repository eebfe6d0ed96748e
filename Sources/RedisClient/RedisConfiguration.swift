/// Where and how to connect. Build it from a URL or field by field.
public struct RedisConfiguration: Sendable {
    public enum Endpoint: Sendable, Hashable {
        case tcp(host: String, port: Int)
        case unixSocket(path: String)
    }

    public static let defaultPort = 6379

    public var endpoint: Endpoint
    public var username: String?
    public var password: String?
    public var database: Int
    /// TLS on the TCP connection (`rediss://`); nil for plain TCP and unix sockets.
    public var tls: RedisTLS?
    /// Bounds establishing a connection: TCP connect plus AUTH and SELECT.
    public var connectTimeout: Duration
    /// Default per-command reply timeout for `send(_:)` and `pipeline(_:)`.
    public var commandTimeout: Duration
    /// The most connections the pool opens (dedicated connections not counted);
    /// in a Redis Cluster, per node.
    public var maximumConnections: Int
    /// More nodes to ask for a Redis Cluster's slot map when the configured
    /// one does not answer (`REDIS_CLUSTER_NODES`); unused on a single node.
    public var clusterSeeds: [ClusterNode] = []

    public init(
        endpoint: Endpoint,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        tls: RedisTLS? = nil,
        connectTimeout: Duration = .seconds(2),
        commandTimeout: Duration = .seconds(5),
        maximumConnections: Int = 4
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.maximumConnections = max(1, maximumConnections)
    }

    /// Parses `redis://[user:password@]host[:port][/db]`, the same with
    /// `rediss://` (TLS, verified against the system's trust roots until
    /// `tls` is replaced), or `unix://[user:password@]/path/to.sock[?db=N]`.
    /// User and password are percent-decoded; `?db=N` is accepted for every
    /// scheme. Timeouts and pool size keep their defaults.
    public init(url: String) throws(RedisError) {
        self = try RedisURLParser.parse(url)
    }
}

/// Hand-written so that errors can name the bad part without echoing the
/// password, and so that unix socket paths need no host.
enum RedisURLParser {
    static func parse(_ url: String) throws(RedisError) -> RedisConfiguration {
        guard let schemeEnd = url.firstRange(of: "://") else {
            throw invalid("missing scheme (expected redis://, rediss:// or unix://)")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        var rest = Substring(url[schemeEnd.upperBound...])

        var query: Substring = ""
        if let questionMark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: questionMark)...]
            rest = rest[..<questionMark]
        }

        // Userinfo ends at the last "@" before the path, so passwords may contain "@" only
        // percent-encoded, and paths (after "/") are never taken for userinfo.
        var username: String?
        var password: String?
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        if let at = rest[..<authorityEnd].lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                username = try decode(userinfo[..<colon], part: "username")
                password = try decode(userinfo[userinfo.index(after: colon)...], part: "password")
            } else {
                username = try decode(userinfo, part: "username")
            }
            if username?.isEmpty == true { username = nil }
        }

        var database = try databaseFromQuery(query)
        let endpoint: RedisConfiguration.Endpoint
        var tls: RedisTLS?
        switch scheme {
        case "redis", "rediss":
            let hostAndPort: Substring
            if let slash = rest.firstIndex(of: "/") {
                hostAndPort = rest[..<slash]
                let path = rest[rest.index(after: slash)...]
                if !path.isEmpty {
                    guard database == nil else { throw invalid("database given both in path and query") }
                    database = try parseDatabase(path)
                }
            } else {
                hostAndPort = rest
            }
            let (host, port) = try parseHostAndPort(hostAndPort)
            endpoint = .tcp(host: host, port: port)
            if scheme == "rediss" { tls = try RedisTLS() }
        case "unix":
            guard rest.hasPrefix("/"), rest.count > 1 else {
                throw invalid("unix socket URL needs an absolute path, e.g. unix:///run/redis.sock")
            }
            endpoint = .unixSocket(path: String(rest))
        default:
            throw invalid("unsupported scheme '\(scheme)' (expected redis://, rediss:// or unix://)")
        }

        return RedisConfiguration(
            endpoint: endpoint, username: username, password: password, database: database ?? 0, tls: tls)
    }

    private static func parseHostAndPort(_ text: Substring) throws(RedisError) -> (String, Int) {
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {  // IPv6 literal: [::1]:6379
            guard let close = text.firstIndex(of: "]") else { throw invalid("unterminated IPv6 address") }
            host = text[text.index(after: text.startIndex)..<close]
            let afterHost = text[text.index(after: close)...]
            if !afterHost.isEmpty {
                guard afterHost.hasPrefix(":") else { throw invalid("unexpected text after IPv6 address") }
                portText = afterHost.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = text
        }
        guard !host.isEmpty else { throw invalid("missing host") }
        var port = RedisConfiguration.defaultPort
        if let portText {
            guard let parsed = Int(portText), (1...65535).contains(parsed) else {
                throw invalid("invalid port '\(portText)'")
            }
            port = parsed
        }
        return (String(host), port)
    }

    private static func databaseFromQuery(_ query: Substring) throws(RedisError) -> Int? {
        var database: Int?
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts[0] == "db", parts.count == 2 else {
                throw invalid("unsupported query parameter '\(parts[0])' (only db=N)")
            }
            database = try parseDatabase(parts[1])
        }
        return database
    }

    private static func parseDatabase(_ text: Substring) throws(RedisError) -> Int {
        guard let database = Int(text), database >= 0 else { throw invalid("invalid database '\(text)'") }
        return database
    }

    /// Percent-decodes userinfo. Errors name the part, never its content.
    private static func decode(_ text: Substring, part: String) throws(RedisError) -> String {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                throw invalid("malformed percent-encoding in \(part)")
            }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw invalid("\(part) is not valid UTF-8 after percent-decoding")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func invalid(_ reason: String) -> RedisError {
        RedisError(code: .invalidURL, message: "invalid Redis URL: \(reason)")
    }
}
