import Synchronization
import ThreadDomain

/// The decision state of recently written threads, per process, so a command
/// loads only the events after it (usually none or one) instead of the
/// snapshot and up to `snapshotInterval` events, all JSON-decoded. Safe
/// without invalidation: the append is conditional on the version, so a state
/// another process has moved past only costs a conflict and a reload of what
/// was missed. Message records are not kept (as in a snapshot): each command
/// loads the ones it refers to from the message index.
final class ThreadStateCache: Sendable {
    private struct Entry {
        var state: ThreadState
        /// The stream was at this state when it was stored (loaded, or our own
        /// append went in right after it), not known to be behind.
        var isCurrent: Bool
        var lastUse: UInt64
    }

    private struct Storage {
        var entries: [ThreadID: Entry] = [:]
        var clock: UInt64 = 0

        /// The entry, marked as the most recently used one.
        mutating func touch(_ threadId: ThreadID) -> Entry? {
            clock += 1
            entries[threadId]?.lastUse = clock
            return entries[threadId]
        }
    }

    let capacity: Int
    private let storage = Mutex(Storage())

    init(capacity: Int) {
        self.capacity = capacity
    }

    func state(of threadId: ThreadID) -> ThreadState? {
        storage.withLock { $0.touch(threadId)?.state }
    }

    /// The state when it was the stream's at last sight: what a post may be
    /// decided on without loading. A state known to be behind is only a base
    /// to load the missed events on.
    func currentState(of threadId: ThreadID) -> ThreadState? {
        storage.withLock { storage in
            guard storage.entries[threadId]?.isCurrent == true else { return nil }
            return storage.touch(threadId)?.state
        }
    }

    func remember(_ state: ThreadState?, isCurrent: Bool = true) {
        guard capacity > 0, var state else { return }
        state.messages = [:]
        storage.withLock { storage in
            storage.clock += 1
            storage.entries[state.id] = Entry(state: state, isCurrent: isCurrent, lastUse: storage.clock)
            guard storage.entries.count > capacity else { return }
            // Evict the least recently used tenth at once: one sort per many inserts.
            let evicted = storage.entries.sorted { $0.value.lastUse < $1.value.lastUse }.prefix(max(1, capacity / 10))
            for (threadId, _) in evicted { storage.entries[threadId] = nil }
        }
    }

    func forget(_ threadId: ThreadID) {
        _ = storage.withLock { $0.entries.removeValue(forKey: threadId) }
    }

    var count: Int { storage.withLock { $0.entries.count } }
}
