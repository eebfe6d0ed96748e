public import ThreadDomain
import Synchronization

/// An event store in memory with the same contract as `RedisEventStore`
/// (the shared store test suite runs against both), for tests of the layers
/// above that need no Redis.
public final class InMemoryEventStore: EventStore {
    private struct Thread {
        var events: [RecordedEvent] = []
        var snapshot: ThreadState?
        var messageIndex: [MessageID: MessageRecord] = [:]
        var idempotency: [String: IdempotencyRecord] = [:]
    }

    private let threads = Mutex<[ThreadID: Thread]>([:])

    public init() {}

    public func load(
        _ threadId: ThreadID, since base: ThreadState?, messageIds: [MessageID], commandId: String?
    ) async throws(EventStoreError) -> LoadedThread {
        let thread = threads.withLock { $0[threadId] } ?? Thread()
        // A base newer than the stream (it was dropped) is no base, as in `tw_load`.
        let usable = base.flatMap { $0.version <= (thread.events.last?.version ?? 0) ? $0 : nil }
        var state = usable ?? thread.snapshot
        let after = state?.version ?? 0
        let missed = thread.events.filter { $0.version > after }
        state = ThreadDecider.replay(missed, from: state)
        if var current = state {
            for id in messageIds {
                if let record = thread.messageIndex[id] { current.messages[id] = record }
            }
            state = current
        }
        let previous = commandId.flatMap { thread.idempotency[$0] }
        return LoadedThread(state: state, eventsReplayed: missed.count, previousOutcome: previous)
    }

    public func append(_ request: AppendRequest) async throws(EventStoreError) -> AppendOutcome {
        threads.withLock { threads in
            var thread = threads[request.threadId] ?? Thread()
            let actual = thread.events.last?.version ?? 0
            // This very append went in already and is sent again after a lost reply.
            let lastOfRequest = request.expectedVersion + Int64(request.eventCount)
            if actual > request.expectedVersion, let event = thread.events.first(where: { $0.version == lastOfRequest }),
                event.commandId == request.commands.last?.commandId
            {
                return .appended(version: lastOfRequest)
            }
            for (index, command) in request.commands.enumerated() {
                guard let idempotency = command.idempotency, let previous = thread.idempotency[command.commandId] else { continue }
                return previous.fingerprint == idempotency.fingerprint ? .duplicate(previous, command: index) : .reused(command: index)
            }
            guard actual == request.expectedVersion else { return .conflict(actualVersion: actual) }
            for event in request.recordedEvents {
                thread.events.append(event)
                thread.messageIndex.merge(event.event.messageIndexUpdates(existing: thread.messageIndex)) { $1 }
                // A command's record holds the version of its last event.
                if let idempotency = request.commands.first(where: { $0.commandId == event.commandId })?.idempotency {
                    thread.idempotency[event.commandId] = IdempotencyRecord(
                        version: event.version, result: idempotency.result, fingerprint: idempotency.fingerprint)
                }
            }
            threads[request.threadId] = thread
            return .appended(version: thread.events.last?.version ?? 0)
        }
    }

    public func events(of threadId: ThreadID, after version: Int64, limit: Int) async throws(EventStoreError) -> [RecordedEvent] {
        let events = threads.withLock { $0[threadId]?.events } ?? []
        return Array(events.filter { $0.version > version }.prefix(limit))
    }

    public func saveSnapshot(_ state: ThreadState) async throws(EventStoreError) {
        var decisionState = state
        decisionState.messages = [:]
        threads.withLock { threads in
            var thread = threads[state.id] ?? Thread()
            if (thread.snapshot?.version ?? 0) < state.version { thread.snapshot = decisionState }
            threads[state.id] = thread
        }
    }
}
