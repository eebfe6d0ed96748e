import Synchronization
import ThreadDomain

/// Commands of one process for one thread take turns, first come first
/// served. Among themselves they could only conflict: each would load the
/// same version, one append would win and the rest would reload, back off
/// and try again, so a busy thread spent its time on retries (and, past the
/// bounded attempts, refused messages). In turn, each command decides on the
/// state the previous one left in the cache. Other processes still race;
/// the append's version check settles that, as before.
final class ThreadLanes: Sendable {
    private struct Lane {
        /// Commands waiting for the thread, in arrival order.
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    /// A thread is in the dictionary while a command holds it.
    private let lanes = Mutex<[ThreadID: Lane]>([:])

    /// Runs `body` once no earlier command of this process holds `threadId`.
    func run<Result>(
        _ threadId: ThreadID, _ body: () async throws(FunctionError) -> Result
    ) async throws(FunctionError) -> Result {
        await acquire(threadId)
        defer { release(threadId) }
        // A caller that went away while waiting passes its turn on at once.
        guard !Task.isCancelled else { throw FunctionError(.unavailable, "the request was cancelled while waiting its turn") }
        return try await body()
    }

    private func acquire(_ threadId: ThreadID) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let mustWait = lanes.withLock { lanes in
                if lanes[threadId] == nil {
                    lanes[threadId] = Lane()
                    return false
                }
                lanes[threadId]!.waiting.append(continuation)
                return true
            }
            if !mustWait { continuation.resume() }
        }
    }

    private func release(_ threadId: ThreadID) {
        let next = lanes.withLock { lanes -> CheckedContinuation<Void, Never>? in
            guard var lane = lanes[threadId], !lane.waiting.isEmpty else {
                lanes[threadId] = nil
                return nil
            }
            let next = lane.waiting.removeFirst()
            lanes[threadId] = lane
            return next
        }
        next?.resume()
    }

    /// Threads held or waited for right now.
    var busyThreads: Int { lanes.withLock { $0.count } }
}
