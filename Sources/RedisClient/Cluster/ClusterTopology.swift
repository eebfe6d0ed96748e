/// One node of a cluster as clients reach it.
public struct ClusterNode: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Parses `host:port,host:port,…` (`[v6]:port` for IPv6 literals), as `REDIS_CLUSTER_NODES` holds it.
    public static func list(_ text: String) throws(RedisError) -> [ClusterNode] {
        var nodes: [ClusterNode] = []
        for item in text.split(separator: ",") {
            let item = String(item.filter { !$0.isWhitespace })
            guard !item.isEmpty else { continue }
            guard let colon = item.lastIndex(of: ":"), let port = Int(item[item.index(after: colon)...]), (1...65535).contains(port)
            else { throw RedisError(code: .invalidConfiguration, message: "cluster node '\(item)' is not host:port") }
            var host = String(item[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else { throw RedisError(code: .invalidConfiguration, message: "cluster node '\(item)' has no host") }
            nodes.append(ClusterNode(host: host, port: port))
        }
        return nodes
    }
}

/// Which primary serves each slot, learnt from `CLUSTER SHARDS` (Redis 7.0+)
/// or `CLUSTER SLOTS`. A lookup is one array read.
public struct ClusterTopology: Sendable, Hashable {
    public struct Shard: Sendable, Hashable {
        public var slots: [ClosedRange<Int>]
        public var primary: ClusterNode
        public var replicas: [ClusterNode]
    }

    public let shards: [Shard]
    /// For each slot, the index of its shard in `shards` plus one; 0: no shard serves it.
    private let shardOfSlot: [UInt16]

    public init(shards: [Shard]) {
        self.shards = shards
        var shardOfSlot = [UInt16](repeating: 0, count: HashSlot.count)
        for (index, shard) in shards.enumerated() {
            for range in shard.slots where range.lowerBound >= 0 && range.upperBound < HashSlot.count {
                for slot in range { shardOfSlot[slot] = UInt16(index + 1) }
            }
        }
        self.shardOfSlot = shardOfSlot
    }

    /// The primary serving `slot`, or nil while no shard does (the cluster is incomplete).
    public func primary(for slot: HashSlot) -> ClusterNode? {
        let index = Int(shardOfSlot[Int(slot.rawValue)])
        return index == 0 ? nil : shards[index - 1].primary
    }

    public var primaries: [ClusterNode] { shards.map(\.primary) }

    /// True when every slot has a primary.
    public var coversEverySlot: Bool { !shardOfSlot.contains(0) }

    /// Parses a `CLUSTER SHARDS` reply (RESP2: each shard a flat list of
    /// `slots`, `[start, end, …]`, `nodes`, `[[name, value, …], …]`). Nodes
    /// that are not online are left out; a shard without an online primary
    /// is left out too, so its slots read as unserved until the next refresh.
    /// `replyingNode` stands in for a node that reports no address of its own.
    public static func fromShards(_ reply: RedisValue, replyingNode: ClusterNode) throws(RedisError) -> ClusterTopology {
        guard let entries = reply.array else { throw malformed("CLUSTER SHARDS") }
        var shards: [Shard] = []
        for entry in entries {
            let fields = try fieldMap(entry, "CLUSTER SHARDS")
            guard let slotBounds = fields["slots"]?.array?.compactMap(\.int), slotBounds.count.isMultiple(of: 2),
                let nodes = fields["nodes"]?.array
            else { throw malformed("CLUSTER SHARDS") }
            var primary: ClusterNode?
            var replicas: [ClusterNode] = []
            for node in nodes {
                let node = try fieldMap(node, "CLUSTER SHARDS")
                guard node["health"]?.string ?? "online" == "online", let port = node["port"]?.int else { continue }
                let address = ClusterNode(host: host(node["endpoint"]?.string ?? node["ip"]?.string, replyingNode), port: port)
                if node["role"]?.string == "master" { primary = address } else { replicas.append(address) }
            }
            guard let primary else { continue }
            let slots = stride(from: 0, to: slotBounds.count, by: 2).map { slotBounds[$0]...slotBounds[$0 + 1] }
            shards.append(Shard(slots: slots, primary: primary, replicas: replicas))
        }
        return ClusterTopology(shards: shards)
    }

    /// Parses a `CLUSTER SLOTS` reply: `[start, end, [host, port, id, …], replicas…]` per range.
    public static func fromSlots(_ reply: RedisValue, replyingNode: ClusterNode) throws(RedisError) -> ClusterTopology {
        guard let ranges = reply.array else { throw malformed("CLUSTER SLOTS") }
        var byPrimary: [ClusterNode: Shard] = [:]
        var order: [ClusterNode] = []
        for range in ranges {
            guard let parts = range.array, parts.count >= 3, let start = parts[0].int, let end = parts[1].int, start <= end else {
                throw malformed("CLUSTER SLOTS")
            }
            let nodes = try parts.dropFirst(2).map { node throws(RedisError) -> ClusterNode in
                guard let fields = node.array, fields.count >= 2, let port = fields[1].int else { throw malformed("CLUSTER SLOTS") }
                return ClusterNode(host: host(fields[0].string, replyingNode), port: port)
            }
            let primary = nodes[0]
            if byPrimary[primary] == nil {
                order.append(primary)
                byPrimary[primary] = Shard(slots: [], primary: primary, replicas: Array(nodes.dropFirst()))
            }
            byPrimary[primary]?.slots.append(start...end)
        }
        return ClusterTopology(shards: order.compactMap { byPrimary[$0] })
    }

    /// An empty or `?` endpoint means "the address you reached me by".
    private static func host(_ reported: String?, _ replyingNode: ClusterNode) -> String {
        guard let reported, !reported.isEmpty, reported != "?" else { return replyingNode.host }
        return reported
    }

    private static func fieldMap(_ value: RedisValue, _ command: String) throws(RedisError) -> [String: RedisValue] {
        guard let items = value.array, items.count.isMultiple(of: 2) else { throw malformed(command) }
        var fields: [String: RedisValue] = [:]
        for index in stride(from: 0, to: items.count, by: 2) {
            guard let name = items[index].string else { throw malformed(command) }
            fields[name] = items[index + 1]
        }
        return fields
    }

    private static func malformed(_ command: String) -> RedisError {
        RedisError(code: .protocolError, message: "unexpected \(command) reply")
    }
}
