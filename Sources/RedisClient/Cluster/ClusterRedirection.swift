/// A cluster's answer that a command's slot is served elsewhere:
/// `MOVED <slot> <host:port>` (for good: learn the map again) or
/// `ASK <slot> <host:port>` (mid-migration: ask that node once, after `ASKING`).
public enum ClusterRedirect: Sendable, Hashable {
    case moved(HashSlot, ClusterNode)
    case ask(HashSlot, ClusterNode)

    /// `replyingNode` stands in for an empty host (a node that knows no endpoint of its own).
    public init?(_ error: RedisError, replyingNode: ClusterNode) {
        guard error.code == .server else { return nil }
        let parts = error.message.split(separator: " ")
        guard parts.count == 3, let slotNumber = UInt16(parts[1]), let slot = HashSlot(rawValue: slotNumber),
            let colon = parts[2].lastIndex(of: ":"), let port = Int(parts[2][parts[2].index(after: colon)...])
        else { return nil }
        var host = String(parts[2][..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let node = ClusterNode(host: host.isEmpty || host == "?" ? replyingNode.host : host, port: port)
        switch parts[0] {
        case "MOVED": self = .moved(slot, node)
        case "ASK": self = .ask(slot, node)
        default: return nil
        }
    }
}

/// What to do with one command's replies in a cluster, without I/O: follow
/// `MOVED` (and learn the map again), follow `ASK` once with `ASKING`, wait
/// and retry on `TRYAGAIN` (a multi-key command mid-migration) and
/// `CLUSTERDOWN`, `MASTERDOWN` or `READONLY` (a failover in progress: the
/// command was refused before it ran), re-route after a node could not be
/// reached. Everything else, success or error, is the command's own answer.
/// A command that reached a node and lost its connection is not sent again:
/// it may have run, and only its caller knows whether that is safe.
public struct ClusterRequestStateMachine: Sendable {
    public struct Policy: Sendable, Hashable {
        /// Sends in all, the first included.
        public var maximumAttempts: Int
        public var firstBackoff: Duration
        public var maximumBackoff: Duration

        public init(maximumAttempts: Int = 8, firstBackoff: Duration = .milliseconds(10), maximumBackoff: Duration = .milliseconds(320)) {
            self.maximumAttempts = maximumAttempts
            self.firstBackoff = firstBackoff
            self.maximumBackoff = maximumBackoff
        }
    }

    public enum Action: Sendable, Equatable {
        /// Send to this node after waiting `after`; `asking`: precede the command by `ASKING`.
        case send(to: ClusterNode, asking: Bool, after: Duration)
        /// Learn the slot map again, wait, then send to the node the map names for the slot.
        case refreshAndResend(after: Duration)
        /// The reply is the command's answer (a value or its own error).
        case answer
        /// Give up with this error; `refreshTopology`: the map is probably stale.
        case fail(RedisError, refreshTopology: Bool)

        public static func == (lhs: Action, rhs: Action) -> Bool {
            switch (lhs, rhs) {
            case (.send(let a, let askingA, let afterA), .send(let b, let askingB, let afterB)):
                a == b && askingA == askingB && afterA == afterB
            case (.refreshAndResend(let a), .refreshAndResend(let b)): a == b
            case (.answer, .answer): true
            case (.fail(let a, let refreshA), .fail(let b, let refreshB)):
                a.code == b.code && a.message == b.message && refreshA == refreshB
            default: false
            }
        }
    }

    private let policy: Policy
    private var target: ClusterNode
    private var asking = false
    private var attempts = 0

    public init(target: ClusterNode, policy: Policy = Policy()) {
        self.policy = policy
        self.target = target
    }

    /// The first send.
    public mutating func start() -> Action {
        attempts = 1
        return .send(to: target, asking: false, after: .zero)
    }

    /// After `.refreshAndResend`: the node the fresh map names for the slot.
    public mutating func resend(to node: ClusterNode) -> Action {
        target = node
        asking = false
        return .send(to: node, asking: false, after: .zero)
    }

    public mutating func received(_ result: Result<RedisValue, RedisError>) -> Action {
        guard case .failure(let error) = result else { return .answer }
        let exhausted = attempts >= policy.maximumAttempts
        if let redirect = ClusterRedirect(error, replyingNode: target) {
            guard !exhausted else { return .fail(error, refreshTopology: true) }
            attempts += 1
            switch redirect {
            case .moved(_, let node):
                target = node
                asking = false
                return .send(to: node, asking: false, after: .zero)
            case .ask(_, let node):
                target = node
                asking = true
                return .send(to: node, asking: true, after: .zero)
            }
        }
        switch (error.code, error.serverErrorPrefix) {
        case (.server, "TRYAGAIN"):
            guard !exhausted else { return .fail(error, refreshTopology: false) }
            attempts += 1
            return .send(to: target, asking: asking, after: backoff)
        case (.server, "CLUSTERDOWN"), (.server, "MASTERDOWN"), (.server, "READONLY"), (.connectionFailed, _):
            guard !exhausted else { return .fail(error, refreshTopology: true) }
            attempts += 1
            return .refreshAndResend(after: backoff)
        case (.connectionClosed, _), (.timeout, _):
            return .fail(error, refreshTopology: true)
        default:
            return .answer
        }
    }

    /// Doubles from `firstBackoff` with each attempt, up to `maximumBackoff`.
    private var backoff: Duration {
        let doublings = min(max(attempts - 2, 0), 20)
        return min(policy.firstBackoff * (1 << doublings), policy.maximumBackoff)
    }
}
