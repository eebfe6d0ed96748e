import ThreadDomain
import Synchronization

/// The `minVersion` waits of one process (see `VersionWaitStateMachine`):
/// bounded in number, served by one shared poll. Share one instance per
/// process; `ReadModelReader` makes it.
final class VersionWaits: Sendable {
    typealias Fetch = @Sendable ([ThreadID]) async throws(ReadModelError) -> [ThreadID: Int64]
    private typealias StateMachine = VersionWaitStateMachine<CheckedContinuation<VersionWaitOutcome, Never>>

    private let state: Mutex<StateMachine>
    private let pollInterval: Duration
    private let fetch: Fetch

    /// `pollInterval` is the poller's tick and each wait's first pause; a
    /// wait's pause doubles after every check, up to `longestPause`.
    init(maximumWaiters: Int, pollInterval: Duration, longestPause: Duration, fetch: @escaping Fetch) {
        state = Mutex(StateMachine(maximumWaiters: maximumWaiters, firstPause: pollInterval, longestPause: longestPause))
        self.pollInterval = pollInterval
        self.fetch = fetch
    }

    var waiterCount: Int { state.withLock { $0.waiterCount } }

    /// Returns once `fetch` reports at least `minVersion` for the thread;
    /// throws `.timeout` after `timeout`, `.unavailable` when too many wait.
    func wait(until minVersion: Int64, of threadId: ThreadID, timeout: Duration) async throws(ReadModelError) {
        let deadline = ContinuousClock.now + timeout
        guard let id = state.withLock({ $0.add(threadId, minVersion: minVersion, deadline: deadline) }) else {
            throw ReadModelError(.unavailable, "too many requests are waiting for minVersion; try again")
        }
        var outcome = await park(id)
        if case .poll = outcome { outcome = await poll(as: id) }
        switch outcome {
        case .reached: return
        case .poll: preconditionFailure("a poller returns its own outcome")
        case .expired:
            throw ReadModelError(.timeout, "the read model of thread \(threadId) did not reach version \(minVersion) within \(timeout)")
        case .cancelled: throw ReadModelError(.timeout, "the wait for version \(minVersion) was cancelled")
        case .failed(let error): throw error
        }
    }

    private func park(_ id: Int) async -> VersionWaitOutcome {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if let outcome = state.withLock({ $0.park(id, continuation) }) { continuation.resume(returning: outcome) }
            }
        } onCancel: {
            state.withLock { $0.cancel(id) }?.resume(returning: .cancelled)
        }
    }

    /// Polls for every waiter until this one's own wait ends, then hands over.
    private func poll(as id: Int) async -> VersionWaitOutcome {
        while true {
            if let (outcome, successor) = state.withLock({ $0.pollerStepsDown(id) }) {
                successor?.resume(returning: .poll)
                return outcome
            }
            do {
                try await Task.sleep(for: pollInterval)
            } catch {
                _ = state.withLock { $0.cancel(id) }  // the poller is never parked: this only marks it
                continue
            }
            let threads = state.withLock { $0.threadsDue(at: .now) }
            let wake: [(CheckedContinuation<VersionWaitOutcome, Never>, VersionWaitOutcome)]
            do throws(ReadModelError) {
                let versions = threads.isEmpty ? [:] : try await fetch(threads)
                wake = state.withLock { $0.polled(versions, now: ContinuousClock.now) }
            } catch {
                wake = state.withLock { $0.pollFailed(error) }
            }
            for (waiter, outcome) in wake { waiter.resume(returning: outcome) }
        }
    }
}
