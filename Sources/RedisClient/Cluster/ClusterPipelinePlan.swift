/// How a pipeline is split over a cluster's nodes and put back together,
/// without I/O: one batch per node, each keeping its commands' order, and
/// the replies reassembled in the order of the original commands.
struct ClusterPipelinePlan<Node: Hashable>: Sendable where Node: Sendable {
    struct Batch: Sendable {
        var node: Node
        /// Positions of the batch's commands in the original pipeline, ascending.
        var positions: [Int]
    }

    /// In the order each node first appears.
    let batches: [Batch]
    let commandCount: Int

    /// `nodes[i]`: the node that serves command `i`.
    init(nodes: [Node]) {
        var batches: [Batch] = []
        var batchOfNode: [Node: Int] = [:]
        for (position, node) in nodes.enumerated() {
            if let index = batchOfNode[node] {
                batches[index].positions.append(position)
            } else {
                batchOfNode[node] = batches.count
                batches.append(Batch(node: node, positions: [position]))
            }
        }
        self.batches = batches
        self.commandCount = nodes.count
    }

    /// `replies[b]`: the replies of batch `b`, in its order. Answers them in
    /// the order of the original commands.
    func reassemble<Reply>(_ replies: [[Reply]]) -> [Reply] {
        precondition(replies.count == batches.count, "one reply list per batch")
        var ordered = [Reply?](repeating: nil, count: commandCount)
        for (batch, batchReplies) in zip(batches, replies) {
            precondition(batchReplies.count == batch.positions.count, "one reply per command of the batch")
            for (position, reply) in zip(batch.positions, batchReplies) { ordered[position] = reply }
        }
        return ordered.map { $0! }
    }
}
