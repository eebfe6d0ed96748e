public import Logging
public import RedisClient
public import ThreadDomain
import Foundation

/// The event store of DESIGN §2 on Redis Streams: append and load are one
/// `FCALL` each, so the version check and the writes are one atomic step.
public struct RedisEventStore: EventStore {
    public let redis: any RedisCommandExecutor
    public let layout: KeyLayout
    private let calls: LibraryCalls
    private let logger: Logger

    /// `reminder`: share one among the stores of a process part, so a missing library is reported once.
    public init(redis: any RedisCommandExecutor, layout: KeyLayout, logger: Logger, reminder: SetupReminder = SetupReminder()) {
        self.redis = redis
        self.layout = layout
        self.calls = LibraryCalls(redis, library: .eventStore, logger: logger, reminder: reminder)
        self.logger = logger
    }

    public func load(
        _ threadId: ThreadID, since base: ThreadState?, messageIds: [MessageID], commandId: String?
    ) async throws(EventStoreError) -> LoadedThread {
        let reply = try await call(
            LoadThreadCall(threadId, layout: layout, baseVersion: base?.version ?? 0, messageIds: messageIds, commandId: commandId))
        // `tw_load` answers the base version it replayed from: the caller's, or, when the
        // caller's state is newer than the stream (dropped, or lost in a crash), the snapshot's.
        var state = base
        if base?.version != reply.snapshotVersion {
            state = try reply.snapshot.map { snapshot throws(EventStoreError) in
                try decodeSnapshot(snapshot, version: reply.snapshotVersion, threadId: threadId)
            }
        }
        for entry in reply.entries {
            state = ThreadDecider.evolve(state, try StreamEntryDecoder.recordedEvent(from: entry))
        }
        if var current = state {
            for (id, record) in zip(messageIds, reply.messageRecords) {
                guard let record else { continue }
                do {
                    current.messages[id] = try JSONDecoder().decode(MessageRecord.self, from: Data(record))
                } catch {
                    throw EventStoreError(.corruptData, "message index entry \(id) of thread \(threadId) is unreadable", underlying: error)
                }
            }
            state = current
        }
        let previous = commandId == nil ? nil : reply.previousOutcome.map {
            IdempotencyRecord(version: $0.version, result: $0.result, fingerprint: $0.fingerprint)
        }
        return LoadedThread(state: state, eventsReplayed: reply.entries.count, previousOutcome: previous)
    }

    public func append(_ request: AppendRequest) async throws(EventStoreError) -> AppendOutcome {
        let snapshot = try request.snapshot.map { state throws(EventStoreError) in try encodeSnapshot(state) }
        switch try await call(AppendCall(request, snapshotJSON: snapshot, layout: layout)) {
        case .appended(let version):
            return .appended(version: version)
        case .conflict(let actualVersion):
            return .conflict(actualVersion: actualVersion)
        case .duplicate(let command, let version, let result):
            guard request.commands.indices.contains(command) else {
                throw EventStoreError(.unexpectedReply, "tw_append_batch named command \(command + 1) of \(request.commands.count)")
            }
            let fingerprint = request.commands[command].idempotency?.fingerprint ?? ""
            return .duplicate(IdempotencyRecord(version: version, result: result, fingerprint: fingerprint), command: command)
        case .reused(let command):
            return .reused(command: command)
        }
    }

    public func events(of threadId: ThreadID, after version: Int64, limit: Int) async throws(EventStoreError) -> [RecordedEvent] {
        var events: [RecordedEvent] = []
        for stored in try await storedEvents(of: threadId, after: version, limit: limit) {
            events.append(try stored.decoded())
        }
        return events
    }

    /// `events(of:after:limit:)` as stored, the data not decoded: what the projector passes on.
    public func storedEvents(of threadId: ThreadID, after version: Int64, limit: Int) async throws(EventStoreError) -> [StoredEvent] {
        let entries = try await call(ReadEventsCall(threadId, after: version, limit: limit, layout: layout))
        var events: [StoredEvent] = []
        events.reserveCapacity(entries.count)
        for entry in entries {
            events.append(try StreamEntryDecoder.storedEvent(from: entry))
        }
        return events
    }

    // MARK: Calls

    /// How often a call refused in a transient state is sent again, and the
    /// pause before each retry: enough to ride out a failover or a short
    /// `LOADING`, short enough to answer 503 well within a client's patience.
    static let transientRetryPauses: [Duration] = [.milliseconds(50), .milliseconds(150), .milliseconds(400)]
    /// A failure later than this into a call is not retried: one more attempt
    /// may wait a whole command timeout (a frozen server accepts connections
    /// and never answers), and the caller should have its 503 by then.
    static let transientRetryWindow: Duration = .seconds(1)

    /// Sends a call through `LibraryCalls` (which loads a missing library).
    /// A transient failure is retried: every call of the store may run twice
    /// (loads read, snapshots are version-gated, an append recognises its own
    /// events). A timeout, or any failure past the retry window, is not: it
    /// has used up the time a caller waits.
    private func call<Call: RedisCall>(_ request: Call) async throws(EventStoreError) -> Call.Reply {
        let started = ContinuousClock.now
        var pauses = Self.transientRetryPauses.makeIterator()
        while true {
            do {
                return try await calls.execute(request)
            } catch {
                guard error.isTransient, error.code != .timeout, ContinuousClock.now - started < Self.transientRetryWindow,
                    let pause = pauses.next()
                else {
                    throw EventStoreError(redisError: error, command: request.command.name)
                }
                logger.debug(
                    "retrying after a transient Redis failure", metadata: ["command": "\(request.command.name)", "error": "\(error)"])
                try? await Task.sleep(for: pause)
            }
        }
    }

    /// A snapshot as `tw:…:snap:` keeps it. Messages are loaded per command
    /// from the message index, so the snapshot stays small however long the
    /// thread grows.
    private func encodeSnapshot(_ state: ThreadState) throws(EventStoreError) -> String {
        var decisionState = state
        decisionState.messages = [:]
        do {
            return String(decoding: try JSONEncoder().encode(decisionState), as: UTF8.self)
        } catch {
            throw EventStoreError(.corruptData, "snapshot of thread \(state.id) could not be encoded", underlying: error)
        }
    }

    private func decodeSnapshot(_ bytes: [UInt8], version: Int64, threadId: ThreadID) throws(EventStoreError) -> ThreadState {
        do {
            var state = try JSONDecoder().decode(ThreadState.self, from: Data(bytes))
            state.version = version
            return state
        } catch {
            throw EventStoreError(.corruptData, "snapshot of thread \(threadId) is unreadable", underlying: error)
        }
    }
}

extension EventStoreError {
    public init(redisError: RedisError, command: String) {
        if redisError.isTransient {
            self.init(.unavailable, "Redis is unavailable", underlying: redisError)
        } else {
            self.init(.unexpectedReply, "Redis refused \(command): \(redisError.message)", underlying: redisError)
        }
    }
}
