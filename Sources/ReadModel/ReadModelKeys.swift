public import EventStore
public import ThreadDomain

extension KeyLayout {
    /// Account-index operations a thread still owes its participants (see
    /// `ReadModelLibrary`): accountId → `version|touch|at` or `version|remove|at`.
    /// Empty whenever the projector is idle.
    public func accountOutbox(_ threadId: ThreadID) -> String { "\(threadView(threadId)):accounts" }

    /// Held by `rebuild` while it runs, so two rebuilds never interleave.
    public var rebuildLock: String { "\(namespace):rebuild:lock" }

    /// The thread's read-model keys in the order `tw_rm_apply` takes them.
    func readModelKeys(of threadId: ThreadID) -> [String] {
        [
            threadView(threadId), administratorsView(threadId), membersView(threadId),
            messagesView(threadId), timelineView(threadId), accountOutbox(threadId),
        ]
    }

    /// SCAN patterns of every read-model key of the namespace: thread views
    /// (all partitions) and account indexes.
    public var readModelKeyPatterns: [String] {
        ["\(namespace):{p*}:rm:*", "\(namespace):{acct:*}:threads*"]
    }

    /// SCAN pattern of the thread streams.
    public var threadStreamPattern: String { "\(namespace):{p*}:thread:*" }

}
