public import Logging
public import NIOCore
public import NIOPosix
public import ServiceLifecycle
import Synchronization

/// The Redis client the project shares: pipelined pooled connections to one
/// node, or to every primary of a Redis Cluster.
///
/// At the first command it asks the configured node (then the extra seeds)
/// `CLUSTER SHARDS` (falling back to `CLUSTER SLOTS`). A server that is not
/// in a cluster answers an error: the pool then talks to that node alone,
/// as it always did. In a cluster it keeps the slot map, sends each command
/// to the primary of its first key's slot (keyless ones to any primary),
/// splits pipelines per node (a keyless command in a pipeline goes with the one before it), follows `MOVED` (learning the map again) and
/// `ASK`, and retries `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, `READONLY` and
/// unreachable nodes with backoff (see `ClusterRequestStateMachine`).
///
/// As a `Service`, `run()` keeps the pool alive until graceful shutdown or
/// cancellation, then closes every connection (dedicated ones included);
/// commands sent after that fail with `.shutdown`. A `ServiceGroup` shuts its
/// services down in reverse order, so list the pool before the services that use it.
public final class RedisConnectionPool: RedisCommandExecutor, Service {
    private enum Mode: Sendable {
        case undiscovered
        case singleNode
        case cluster(ClusterTopology)
    }

    private struct State: Sendable {
        var mode = Mode.undiscovered
        var nodePools: [ClusterNode: RedisNodePool] = [:]
        var isRefreshing = false
        var isShutDown = false
    }

    public let configuration: RedisConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    /// The pool to the configured node: all of the client on a single node.
    private let seed: RedisNodePool
    private let seedNode: ClusterNode?
    private let state = Mutex(State())
    private let retryPolicy = ClusterRequestStateMachine.Policy()

    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.seed = RedisNodePool(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        if case .tcp(let host, let port) = configuration.endpoint {
            seedNode = ClusterNode(host: host, port: port)
            state.withLock { $0.nodePools[ClusterNode(host: host, port: port)] = seed }
        } else {
            seedNode = nil
        }
    }

    public func run() async throws {
        // Returns on graceful shutdown, throws on cancellation: either way, close up.
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Closes every connection now; in-flight commands fail with `.connectionClosed`,
    /// later ones with `.shutdown`. `run()` calls this; call it yourself when not running the pool as a service.
    public func shutdown() async {
        let pools = state.withLock { state in
            state.isShutDown = true
            return Array(state.nodePools.values)
        }
        await seed.shutdown()
        for pool in pools where pool !== seed { await pool.shutdown() }
    }

    /// Open pooled connections (not dedicated ones), for health reporting.
    public var openConnectionCount: Int {
        let pools = state.withLock { Array($0.nodePools.values) }
        let seedCount = pools.contains { $0 === seed } ? 0 : seed.openConnectionCount
        return pools.reduce(seedCount) { $0 + $1.openConnectionCount }
    }

    /// True once the configured node has said it belongs to a cluster.
    public var isCluster: Bool {
        get async throws(RedisError) {
            if case .cluster = try await mode() { return true }
            return false
        }
    }

    // MARK: Commands

    public func send(_ command: RedisCommand) async throws(RedisError) -> RedisValue {
        guard case .cluster(let topology) = try await mode() else { return try await seed.send(command) }
        return try await sendInCluster(command, slot: command.keys.first.map { HashSlot(key: $0) }, topology: topology)
    }

    public func send(_ command: RedisCommand, toNodeOf key: String) async throws(RedisError) -> RedisValue {
        guard case .cluster(let topology) = try await mode() else { return try await seed.send(command) }
        return try await sendInCluster(command, slot: HashSlot(key: key), topology: topology)
    }

    public func pipeline(_ commands: [RedisCommand]) async throws(RedisError) -> [Result<RedisValue, RedisError>] {
        guard case .cluster(let topology) = try await mode() else { return try await seed.pipeline(commands) }
        // A keyless command goes with the command before it: `WAIT` after a write counts that write's replicas.
        var nodes: [ClusterNode] = []
        for command in commands {
            let slot = command.keys.first.map { HashSlot(key: $0) }
            nodes.append(slot == nil && !nodes.isEmpty ? nodes[nodes.count - 1] : node(for: slot, in: topology))
        }
        let plan = ClusterPipelinePlan(nodes: nodes)
        if plan.batches.count == 1 {
            return try await pipelineInCluster(commands, on: plan.batches[0].node)
        }
        // Each node's batch goes at the same time; the replies come back in the commands' order.
        let outcomes = await withTaskGroup(of: BatchOutcome.self) { group in
            for (index, batch) in plan.batches.enumerated() {
                let batchCommands = batch.positions.map { commands[$0] }
                group.addTask { BatchOutcome(index: index, result: await self.pipelineResult(batchCommands, on: batch.node)) }
            }
            var outcomes: [Int: Result<[Result<RedisValue, RedisError>], RedisError>] = [:]
            while let outcome = await group.next() { outcomes[outcome.index] = outcome.result }
            return outcomes
        }
        var replies: [[Result<RedisValue, RedisError>]] = []
        for index in plan.batches.indices {
            guard let outcome = outcomes[index] else {
                throw RedisError(code: .protocolError, message: "a pipeline batch for one node gave no answer")
            }
            replies.append(try outcome.get())
        }
        return plan.reassemble(replies)
    }

    /// The keys grouped so that each group may be named by one command: all
    /// of them on a single node; those of one slot in a cluster (a command
    /// naming keys of several slots is refused with `CROSSSLOT`). In the order
    /// the keys come.
    public func keyGroupsForOneCommand(_ keys: [String]) async throws(RedisError) -> [[String]] {
        guard case .cluster = try await mode() else { return keys.isEmpty ? [] : [keys] }
        var groups: [[String]] = []
        var groupOfSlot: [HashSlot: Int] = [:]
        for key in keys {
            let slot = HashSlot(key: key)
            if let index = groupOfSlot[slot] {
                groups[index].append(key)
            } else {
                groupOfSlot[slot] = groups.count
                groups.append([key])
            }
        }
        return groups
    }

    public func primaryExecutors() async throws(RedisError) -> [any RedisCommandExecutor] {
        guard case .cluster(let topology) = try await mode() else { return [seed] }
        return topology.primaries.map { nodePool(for: $0) }
    }

    // MARK: Dedicated connections

    /// A connection of its own for blocking commands, to the node that serves
    /// `key` (any node for nil), on `eventLoop` (default: one of the pool's);
    /// closed when body returns (or the pool shuts down).
    public func withDedicatedConnection<T: Sendable>(
        forKey key: String? = nil, on eventLoop: (any EventLoop)? = nil, _ body: (RedisConnection) async throws -> T
    ) async throws -> T {
        let dedicated = try await dedicatedConnection(forKey: key, on: eventLoop)
        defer { dedicated.release() }
        return try await body(dedicated.connection)
    }

    /// A connection of its own to the node that serves `key` (any node for
    /// nil), held until `release()` (or the handle's end, or the pool's
    /// shutdown). For a caller that must have the connection before it
    /// answers and uses it later, in another scope: a watch stream opens it
    /// before the 200 and streams from it in the response body.
    public func dedicatedConnection(forKey key: String? = nil, on eventLoop: (any EventLoop)? = nil) async throws(RedisError) -> DedicatedRedisConnection {
        guard case .cluster(let topology) = try await mode() else { return try await seed.dedicatedConnection(on: eventLoop) }
        return try await nodePool(for: node(for: key.map { HashSlot(key: $0) }, in: topology)).dedicatedConnection(on: eventLoop)
    }

    /// Learns the slot map again, e.g. after a dedicated connection lost its
    /// node or met `MOVED`. Does nothing on a single node, or while another
    /// task is already at it.
    public func refreshTopology() async {
        guard case .cluster(let current) = state.withLock({ $0.mode }) else { return }
        let mayRefresh = state.withLock { state in
            defer { state.isRefreshing = true }
            return !state.isRefreshing
        }
        guard mayRefresh else { return }
        defer { state.withLock { $0.isRefreshing = false } }
        var candidates = current.primaries + current.shards.flatMap(\.replicas) + configuration.clusterSeeds
        if let seedNode { candidates.append(seedNode) }
        var asked: Set<ClusterNode> = []
        for node in candidates where asked.insert(node).inserted {
            guard let topology = try? await fetchTopology(from: nodePool(for: node), replyingNode: node), !topology.shards.isEmpty
            else { continue }
            if topology != current {
                logger.notice("Redis Cluster topology changed", metadata: ["primaries": "\(topology.primaries)"])
            }
            state.withLock { $0.mode = .cluster(topology) }
            return
        }
        logger.warning("no Redis Cluster node answered CLUSTER SHARDS; keeping the slot map")
    }

    // MARK: Cluster routing

    private func mode() async throws(RedisError) -> Mode {
        let known = state.withLock { $0.mode }
        guard case .undiscovered = known else { return known }
        let discovered = try await discover()
        return state.withLock { state in
            if case .undiscovered = state.mode { state.mode = discovered }
            return state.mode
        }
    }

    /// Asks the configured node, then the extra seeds, whether they are in a cluster.
    private func discover() async throws(RedisError) -> Mode {
        var firstError: RedisError
        do throws(RedisError) {
            let topology = try await fetchTopology(from: seed, replyingNode: seedNode ?? ClusterNode(host: "localhost", port: 0))
            return found(topology)
        } catch {
            firstError = error
        }
        for node in configuration.clusterSeeds where node != seedNode {
            if let topology = try? await fetchTopology(from: nodePool(for: node), replyingNode: node) {
                return found(topology)
            }
        }
        throw firstError
    }

    private func found(_ topology: ClusterTopology?) -> Mode {
        guard let topology else { return .singleNode }
        logger.info("Redis Cluster found", metadata: ["primaries": "\(topology.primaries)"])
        return .cluster(topology)
    }

    /// The node's slot map; nil when the server answers that it is not in a cluster.
    private func fetchTopology(from pool: RedisNodePool, replyingNode: ClusterNode) async throws(RedisError) -> ClusterTopology? {
        do throws(RedisError) {
            return try ClusterTopology.fromShards(try await pool.send(RedisCommand("CLUSTER", "SHARDS")), replyingNode: replyingNode)
        } catch let error where error.code == .server && !error.isTransient {
            // "ERR This instance has cluster support disabled", or a server older than 7.0 (no SHARDS).
            if error.message.contains("cluster support disabled") { return nil }
        }
        do throws(RedisError) {
            return try ClusterTopology.fromSlots(try await pool.send(RedisCommand("CLUSTER", "SLOTS")), replyingNode: replyingNode)
        } catch let error where error.code == .server && !error.isTransient {
            return nil
        }
    }

    /// The primary of the slot; for keyless commands, or while no primary serves the slot, the first primary.
    private func node(for slot: HashSlot?, in topology: ClusterTopology) -> ClusterNode {
        if let slot, let primary = topology.primary(for: slot) { return primary }
        return topology.primaries.first ?? seedNode ?? ClusterNode(host: "localhost", port: RedisConfiguration.defaultPort)
    }

    private func currentNode(for slot: HashSlot?) -> ClusterNode {
        guard case .cluster(let topology) = state.withLock({ $0.mode }) else {
            return seedNode ?? ClusterNode(host: "localhost", port: RedisConfiguration.defaultPort)
        }
        return node(for: slot, in: topology)
    }

    private func nodePool(for node: ClusterNode) -> RedisNodePool {
        state.withLock { state in
            if let pool = state.nodePools[node] { return pool }
            // After shutdown, the (shut) seed pool answers `.shutdown`.
            guard !state.isShutDown else { return seed }
            var nodeConfiguration = configuration
            nodeConfiguration.endpoint = .tcp(host: node.host, port: node.port)
            let pool = RedisNodePool(configuration: nodeConfiguration, eventLoopGroup: eventLoopGroup, logger: logger)
            state.nodePools[node] = pool
            return pool
        }
    }

    private func sendInCluster(_ command: RedisCommand, slot: HashSlot?, topology: ClusterTopology) async throws(RedisError) -> RedisValue {
        var machine = ClusterRequestStateMachine(target: node(for: slot, in: topology), policy: retryPolicy)
        var action = machine.start()
        var result: Result<RedisValue, RedisError> = .failure(RedisError(code: .shutdown, message: "no reply"))
        while true {
            switch action {
            case .send(let node, let asking, let delay):
                if delay > .zero { try? await Task.sleep(for: delay) }
                result = await sendOnce(command, to: node, asking: asking)
                if case .failure(let error) = result, case .moved? = ClusterRedirect(error, replyingNode: node) {
                    await refreshTopology()
                }
                action = machine.received(result)
            case .refreshAndResend(let delay):
                try? await Task.sleep(for: delay)
                await refreshTopology()
                action = machine.resend(to: currentNode(for: slot))
            case .answer:
                return try result.get()
            case .fail(let error, let refresh):
                if refresh { await refreshTopology() }
                throw error
            }
        }
    }

    private func sendOnce(_ command: RedisCommand, to node: ClusterNode, asking: Bool) async -> Result<RedisValue, RedisError> {
        let pool = nodePool(for: node)
        do throws(RedisError) {
            guard asking else { return .success(try await pool.send(command)) }
            return try await pool.pipeline([RedisCommand("ASKING"), command])[1]
        } catch {
            return .failure(error)
        }
    }

    /// One node's batch of a split pipeline, and where it goes back.
    private struct BatchOutcome: Sendable {
        var index: Int
        var result: Result<[Result<RedisValue, RedisError>], RedisError>
    }

    private func pipelineResult(_ commands: [RedisCommand], on node: ClusterNode) async -> Result<[Result<RedisValue, RedisError>], RedisError> {
        do throws(RedisError) {
            return .success(try await pipelineInCluster(commands, on: node))
        } catch {
            return .failure(error)
        }
    }

    /// One node's batch. Commands the node redirected or refused for a passing
    /// state (and a batch whose node could not be reached) are sent again one
    /// by one, routed afresh; a connection lost mid-batch fails the batch.
    private func pipelineInCluster(_ commands: [RedisCommand], on node: ClusterNode) async throws(RedisError) -> [Result<RedisValue, RedisError>] {
        var results: [Result<RedisValue, RedisError>]
        do throws(RedisError) {
            results = try await nodePool(for: node).pipeline(commands)
        } catch let error where error.code == .connectionFailed {
            await refreshTopology()
            results = commands.map { _ in .failure(error) }
        } catch {
            await refreshTopology()
            throw error
        }
        for (index, result) in results.enumerated() {
            guard case .failure(let error) = result, Self.needsRouting(error, from: node) else { continue }
            let command = commands[index]
            do throws(RedisError) {
                results[index] = .success(try await send(command))
            } catch {
                results[index] = .failure(error)
            }
        }
        return results
    }

    private static func needsRouting(_ error: RedisError, from node: ClusterNode) -> Bool {
        if error.code == .connectionFailed || ClusterRedirect(error, replyingNode: node) != nil { return true }
        guard let prefix = error.serverErrorPrefix else { return false }
        return ["TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY"].contains(prefix)
    }
}
