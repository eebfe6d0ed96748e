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
            let mayFollowMessages = request.mayFollowMessages && request.addsMessagesOnly
            let later = thread.events.filter { $0.version > request.expectedVersion }
            // This very append went in already and is sent again after a lost reply.
            if actual > request.expectedVersion, let version = Self.landing(of: request, in: later, followingMessages: mayFollowMessages) {
                return .appended(version: version)
            }
            for (index, command) in request.commands.enumerated() {
                guard let idempotency = command.idempotency, let previous = thread.idempotency[command.commandId] else { continue }
                return previous.fingerprint == idempotency.fingerprint ? .duplicate(previous, command: index) : .reused(command: index)
            }
            if actual != request.expectedVersion {
                let followsMessagesOnly = actual > request.expectedVersion && later.count <= AppendRequest.rebaseLimit
                    && later.allSatisfy(\.event.addsMessagesOnly)
                guard mayFollowMessages, followsMessagesOnly else { return .conflict(actualVersion: actual) }
            }
            if mayFollowMessages {
                let ids = request.commands.flatMap(\.events).flatMap { $0.messageIndexUpdates(existing: [:]).keys }
                if ids.contains(where: { thread.messageIndex[$0] != nil }) { return .conflict(actualVersion: actual) }
            }
            for event in request.recordedEvents(after: actual) {
                thread.events.append(event)
                thread.messageIndex.merge(event.event.messageIndexUpdates(existing: thread.messageIndex)) { $1 }
                // A command's record holds the version of its last event.
                if let idempotency = request.commands.first(where: { $0.commandId == event.commandId })?.idempotency {
                    thread.idempotency[event.commandId] = IdempotencyRecord(
                        version: event.version, result: idempotency.result, fingerprint: idempotency.fingerprint)
                }
            }
            let version = thread.events.last?.version ?? 0
            if var snapshot = request.snapshot, version == request.decidedVersion, snapshot.version == version,
                (thread.snapshot?.version ?? 0) < version
            {
                snapshot.messages = [:]
                thread.snapshot = snapshot
            }
            threads[request.threadId] = thread
            return .appended(version: version)
        }
    }

    /// Where an append sent again after a lost reply ended, as `tw_append_batch`
    /// finds it: at exactly its expected place, or, when it may follow
    /// messages, anywhere in the events it could have landed after, its first
    /// and last command ids as many events apart as it holds.
    private static func landing(of request: AppendRequest, in later: [RecordedEvent], followingMessages: Bool) -> Int64? {
        let count = request.eventCount
        guard followingMessages else {
            let end = request.expectedVersion + Int64(count)
            return later.first { $0.version == end }.flatMap { $0.commandId == request.commands.last?.commandId ? end : nil }
        }
        let searched = later.prefix(AppendRequest.rebaseLimit + count)
        for end in searched.indices where end - count + 1 >= searched.startIndex {
            let last = searched[end]
            if last.commandId == request.commands.last?.commandId,
                searched[end - count + 1].commandId == request.commands.first?.commandId,
                end == searched.endIndex - 1 || searched[end + 1].commandId != last.commandId
            {
                return last.version
            }
        }
        return nil
    }

    public func events(of threadId: ThreadID, after version: Int64, limit: Int) async throws(EventStoreError) -> [RecordedEvent] {
        let events = threads.withLock { $0[threadId]?.events } ?? []
        return Array(events.filter { $0.version > version }.prefix(limit))
    }
}
