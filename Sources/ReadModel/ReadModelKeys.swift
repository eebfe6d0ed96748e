public import EventStore
public import ThreadDomain

extension KeyLayout {
    /// Account-index operations a thread still owes its participants (see
    /// `ReadModelLibrary`): accountId → `version|touch|at` or `version|remove|at`.
    /// Empty whenever the projector is idle.
    public func accountOutbox(_ threadId: ThreadID) -> String { threadViewKeys(threadId).accountOutbox }

    /// Held by `rebuild` while it runs, so two rebuilds never interleave.
    public var rebuildLock: String { "\(namespace):rebuild:lock" }

    /// The thread's read-model keys in the order `tw_rm_apply` takes them.
    func readModelKeys(of threadId: ThreadID) -> [String] {
        let keys = threadViewKeys(threadId)
        return [keys.view, keys.administrators, keys.members, keys.messages, keys.timeline, keys.accountOutbox]
    }

    /// SCAN patterns of every read-model key of this layout's generation:
    /// thread views (all partitions) and account indexes. They match no other
    /// generation's keys (`{p*}:rm:` never matches `{p07}:g2:rm:`).
    public var readModelKeyPatterns: [String] {
        let segment = readModelGeneration == 0 ? "" : ":g\(readModelGeneration)"
        return ["\(namespace):{p*}\(segment):rm:*", "\(namespace):{acct:*}\(segment):threads*"]
    }

    /// The same layout naming another read-model generation.
    public func generation(_ generation: Int) -> KeyLayout {
        var layout = self
        layout.readModelGeneration = generation
        return layout
    }

    /// SCAN pattern of the thread streams.
    public var threadStreamPattern: String { "\(namespace):{p*}:thread:*" }

}
