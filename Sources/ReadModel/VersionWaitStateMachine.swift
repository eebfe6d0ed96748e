import ThreadDomain

/// Queries waiting for the read model to reach a version (`minVersion`),
/// served by one poll for all of them: one waiter at a time is the poller and
/// reads every waited thread's version in one round trip per tick, then wakes
/// the waiters it satisfied; when its own wait ends it hands the job to a
/// waiter still parked. Each wait is checked after 2 ms, then less and less
/// often (up to every 50 ms), as one request polling alone would; waits for
/// one thread share each read. So Redis sees at most one small pipeline per
/// tick however many requests wait, and none at all when no one does. No
/// I/O here: the actions say whom to wake with what.
struct VersionWaitStateMachine<Waiter> {
    typealias Outcome = VersionWaitOutcome

    private struct Entry {
        var threadId: ThreadID
        var minVersion: Int64
        var deadline: ContinuousClock.Instant
        /// When the wait is next checked, and the pause after that.
        var due: ContinuousClock.Instant
        var pause: Duration
        /// Set while parked.
        var waiter: Waiter?
        /// Set when the wait ended before the waiter parked (or for the poller itself).
        var outcome: Outcome?
    }

    let maximumWaiters: Int
    let firstPause: Duration
    let longestPause: Duration
    private var entries: [Int: Entry] = [:]
    private var nextId = 0
    private(set) var poller: Int?

    init(maximumWaiters: Int, firstPause: Duration = .milliseconds(2), longestPause: Duration = .milliseconds(50)) {
        self.maximumWaiters = maximumWaiters
        self.firstPause = firstPause
        self.longestPause = longestPause
    }

    var waiterCount: Int { entries.count }

    /// Registers a wait, first checked `firstPause` after `now` (the caller
    /// has just read the version); nil when `maximumWaiters` already wait.
    mutating func add(
        _ threadId: ThreadID, minVersion: Int64, deadline: ContinuousClock.Instant, now: ContinuousClock.Instant = .now
    ) -> Int? {
        guard entries.count < maximumWaiters else { return nil }
        nextId += 1
        entries[nextId] = Entry(threadId: threadId, minVersion: minVersion, deadline: deadline, due: now + firstPause, pause: firstPause)
        return nextId
    }

    /// The waiter goes to sleep, unless its wait already ended or no one polls:
    /// then the returned outcome is its answer at once.
    mutating func park(_ id: Int, _ waiter: Waiter) -> Outcome? {
        guard var entry = entries[id] else { return .cancelled }
        if let outcome = entry.outcome {
            entries[id] = nil
            return outcome
        }
        if poller == nil {
            poller = id
            return .poll
        }
        entry.waiter = waiter
        entries[id] = entry
        return nil
    }

    /// The threads the poller reads this tick, each once: those with a wait due.
    func threadsDue(at now: ContinuousClock.Instant) -> [ThreadID] {
        Array(Set(entries.values.lazy.filter { $0.outcome == nil && $0.due <= now }.map(\.threadId)))
    }

    /// The versions the poller read (empty when nothing was due): waits that
    /// reached their version or their deadline end; the others of a thread
    /// that was read are checked again after a longer pause. Returns the
    /// parked waiters to wake.
    mutating func polled(_ versions: [ThreadID: Int64], now: ContinuousClock.Instant) -> [(Waiter, Outcome)] {
        let wake = end { entry in
            if let version = versions[entry.threadId], version >= entry.minVersion { return .reached }
            return now >= entry.deadline ? .expired : nil
        }
        for (id, entry) in entries where entry.outcome == nil && versions[entry.threadId] != nil {
            let pause = min(entry.pause * 2, longestPause)
            entries[id]?.pause = pause
            entries[id]?.due = now + pause
        }
        return wake
    }

    /// The poll failed: every wait ends with that failure (a read of its own would have failed too).
    mutating func pollFailed(_ error: ReadModelError) -> [(Waiter, Outcome)] {
        end { _ in .failed(error) }
    }

    private mutating func end(_ decide: (Entry) -> Outcome?) -> [(Waiter, Outcome)] {
        var wake: [(Waiter, Outcome)] = []
        for (id, entry) in entries where entry.outcome == nil {
            guard let outcome = decide(entry) else { continue }
            if let waiter = entry.waiter {
                entries[id] = nil
                wake.append((waiter, outcome))
            } else {
                entries[id]?.outcome = outcome
            }
        }
        return wake
    }

    /// The waiting task was cancelled: returns its waiter when parked (wake it with `.cancelled`).
    mutating func cancel(_ id: Int) -> Waiter? {
        guard let entry = entries[id], entry.outcome == nil else { return nil }
        if let waiter = entry.waiter {
            entries[id] = nil
            return waiter
        }
        entries[id]?.outcome = .cancelled
        return nil
    }

    /// The poller asks after its own wait. When it ended, the poller steps
    /// down: the result names its outcome and the parked waiter (if any) to
    /// wake with `.poll` to take over.
    mutating func pollerStepsDown(_ id: Int) -> (outcome: Outcome, successor: Waiter?)? {
        guard poller == id, let outcome = entries[id]?.outcome else { return nil }
        entries[id] = nil
        poller = nil
        guard let (successorId, successor) = entries.first(where: { $0.value.waiter != nil && $0.value.outcome == nil }),
            let waiter = successor.waiter
        else { return (outcome, nil) }
        entries[successorId]?.waiter = nil
        poller = successorId
        return (outcome, waiter)
    }
}

/// How one `minVersion` wait ends (or goes on: `.poll`).
enum VersionWaitOutcome: Sendable {
    case reached
    case expired
    /// Wake up as the poller.
    case poll
    case cancelled
    case failed(ReadModelError)
}
