public import Logging
public import RedisClient
public import ThreadDomain
import Foundation

/// The event store of DESIGN §2 on Redis Streams: append and load are one
/// `FCALL` each, so the version check and the writes are one atomic step.
public struct RedisEventStore: EventStore {
    public let redis: any RedisCommandExecutor
    public let layout: KeyLayout
    private let logger: Logger

    public init(redis: any RedisCommandExecutor, layout: KeyLayout, logger: Logger) {
        self.redis = redis
        self.layout = layout
        self.logger = logger
    }

    public func load(
        _ threadId: ThreadID, since base: ThreadState?, messageIds: [MessageID], commandId: String?
    ) async throws(EventStoreError) -> LoadedThread {
        var command = RedisCommand(
            "FCALL", "tw_load", "4",
            layout.threadStream(threadId), layout.snapshot(threadId), layout.messageIndex(threadId),
            commandId.map { layout.idempotencyRecord(threadId, commandId: $0) } ?? layout.idempotencyRecord(threadId, commandId: ""),
            String(base?.version ?? 0))
        for id in messageIds { command.append(id.rawValue) }
        let reply = try await call(command)

        guard let parts = reply.array, parts.count == 5, let snapshotVersion = parts[0].int,
            let entries = parts[2].array, let records = parts[3].array
        else { throw unexpected(reply, in: "tw_load") }

        var state = base
        if base == nil, let snapshot = parts[1].bytes {
            state = try decodeSnapshot(snapshot, version: Int64(snapshotVersion), threadId: threadId)
        }
        var replayed = 0
        for entry in entries {
            let event = try StreamEntryDecoder.recordedEvent(from: entry)
            state = ThreadDecider.evolve(state, event)
            replayed += 1
        }
        if var current = state {
            for (id, record) in zip(messageIds, records) {
                guard let bytes = record.bytes else { continue }
                do {
                    current.messages[id] = try JSONDecoder().decode(MessageRecord.self, from: Data(bytes))
                } catch {
                    throw EventStoreError(.corruptData, "message index entry \(id) of thread \(threadId) is unreadable", underlying: error)
                }
            }
            state = current
        }
        let previous = commandId == nil ? nil : try idempotencyRecord(from: parts[4])
        return LoadedThread(state: state, eventsReplayed: replayed, previousOutcome: previous)
    }

    public func append(_ request: AppendRequest) async throws(EventStoreError) -> AppendOutcome {
        let threadId = request.threadId
        let idempotency = request.idempotency
        var command = RedisCommand(
            "FCALL", "tw_append", "4",
            layout.threadStream(threadId), layout.changeLog(of: threadId),
            layout.idempotencyRecord(threadId, commandId: request.commandId), layout.messageIndex(threadId),
            String(request.expectedVersion), threadId.rawValue, request.commandId, String(request.at),
            request.actor.rawValue, idempotency?.fingerprint ?? "", idempotency?.result ?? "",
            String(idempotency?.timeToLiveSeconds ?? 0), String(request.events.count))
        for event in request.events {
            command.append(event.typeName)
            command.append(event.encodedData())
        }
        let reply = try await call(command)
        guard let parts = reply.array, let status = parts.first?.string, parts.count >= 2, let version = parts[1].int
        else { throw unexpected(reply, in: "tw_append") }
        switch status {
        case "appended":
            return .appended(version: Int64(version))
        case "conflict":
            return .conflict(actualVersion: Int64(version))
        case "duplicate":
            let result = parts.count > 2 ? parts[2].string ?? "" : ""
            return .duplicate(
                IdempotencyRecord(version: Int64(version), result: result, fingerprint: idempotency?.fingerprint ?? ""))
        case "reused":
            throw EventStoreError(
                .idempotencyKeyReused, "the idempotency key was already used for a different request")
        default:
            throw unexpected(reply, in: "tw_append")
        }
    }

    public func events(of threadId: ThreadID, after version: Int64, limit: Int) async throws(EventStoreError) -> [RecordedEvent] {
        let reply = try await call(
            RedisCommand("XRANGE", layout.threadStream(threadId), "\(version + 1)-0", "+", "COUNT", String(limit)))
        guard let entries = reply.array else { throw unexpected(reply, in: "XRANGE") }
        var events: [RecordedEvent] = []
        events.reserveCapacity(entries.count)
        for entry in entries {
            events.append(try StreamEntryDecoder.recordedEvent(from: entry))
        }
        return events
    }

    public func saveSnapshot(_ state: ThreadState) async throws(EventStoreError) {
        var decisionState = state
        // Messages are loaded per command from the message index, so the
        // snapshot stays small however long the thread grows.
        decisionState.messages = [:]
        let json: Data
        do {
            json = try JSONEncoder().encode(decisionState)
        } catch {
            throw EventStoreError(.corruptData, "snapshot of thread \(state.id) could not be encoded", underlying: error)
        }
        _ = try await call(
            RedisCommand(binary: [
                Array("FCALL".utf8), Array("tw_save_snapshot".utf8), Array("1".utf8),
                Array(layout.snapshot(state.id).utf8), Array(String(state.version).utf8), Array(json),
            ]))
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

    /// Sends a command; when Redis says the library is missing (a fresh or
    /// restarted server without persistence), loads it and tries once more.
    /// A transient failure is retried: every call of the store may run twice
    /// (loads read, snapshots are version-gated, an append recognises its own
    /// events). A timeout, or any failure past the retry window, is not: it
    /// has used up the time a caller waits.
    private func call(_ command: RedisCommand) async throws(EventStoreError) -> RedisValue {
        let started = ContinuousClock.now
        var pauses = Self.transientRetryPauses.makeIterator()
        var libraryLoaded = false
        while true {
            do {
                return try await redis.send(command)
            } catch let error where error.isFunctionMissing && !libraryLoaded {
                logger.notice("threadweave library missing on the server: loading it")
                try await StoreSetup.loadLibrary(on: redis)
                libraryLoaded = true
            } catch {
                guard error.isTransient, error.code != .timeout, ContinuousClock.now - started < Self.transientRetryWindow,
                    let pause = pauses.next()
                else {
                    throw EventStoreError(redisError: error, command: command.name)
                }
                logger.debug(
                    "retrying after a transient Redis failure", metadata: ["command": "\(command.name)", "error": "\(error)"])
                try? await Task.sleep(for: pause)
            }
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

    private func idempotencyRecord(from value: RedisValue) throws(EventStoreError) -> IdempotencyRecord? {
        guard let fields = value.array else { return nil }
        guard fields.count == 3, let version = fields[0].int else { throw unexpected(value, in: "tw_load") }
        return IdempotencyRecord(
            version: Int64(version), result: fields[1].string ?? "", fingerprint: fields[2].string ?? "")
    }

    private func unexpected(_ reply: RedisValue, in call: String) -> EventStoreError {
        EventStoreError(.unexpectedReply, "unexpected reply from \(call)")
    }
}

extension RedisError {
    var isFunctionMissing: Bool {
        code == .server && message.contains("Function not found")
    }
}

extension EventStoreError {
    init(redisError: RedisError, command: String) {
        if redisError.isTransient {
            self.init(.unavailable, "Redis is unavailable", underlying: redisError)
        } else {
            self.init(.unexpectedReply, "Redis refused \(command): \(redisError.message)", underlying: redisError)
        }
    }
}
