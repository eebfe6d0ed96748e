import RedisClient
import ThreadDomain

/// The event-store library's Function calls as typed requests: each knows
/// its keys (one thread's, so one slot) and reads its reply's shape once.

/// `tw_load`: the snapshot (unless the caller has a base state), the stream
/// after it, the message-index records asked for, and a previous outcome.
struct LoadThreadCall: RedisCall {
    struct Reply: Sendable {
        var snapshotVersion: Int64
        var snapshot: [UInt8]?
        var entries: [RedisValue]
        /// One per message id asked for, nil where the index has none.
        var messageRecords: [[UInt8]?]
        /// `[version, result, fingerprint]` when the command id was seen.
        var previousOutcome: (version: Int64, result: String, fingerprint: String)?
    }

    let command: RedisCommand

    init(_ threadId: ThreadID, layout: KeyLayout, baseVersion: Int64, messageIds: [MessageID], commandId: String?) {
        command = .fcall(
            "tw_load",
            keys: [
                layout.threadStream(threadId), layout.snapshot(threadId), layout.messageIndex(threadId),
                layout.idempotencyRecord(threadId, commandId: commandId ?? ""),
            ],
            arguments: [String(baseVersion)] + messageIds.map(\.rawValue))
    }

    func decode(_ reply: RedisValue) throws(RedisError) -> Reply {
        guard let parts = reply.array, parts.count == 5, let snapshotVersion = parts[0].int,
            let entries = parts[2].array, let records = parts[3].array
        else { throw unexpected(reply) }
        var previous: (Int64, String, String)?
        if let fields = parts[4].array {
            guard fields.count == 3, let version = fields[0].int else { throw unexpected(reply) }
            previous = (Int64(version), fields[1].string ?? "", fields[2].string ?? "")
        }
        return Reply(
            snapshotVersion: Int64(snapshotVersion), snapshot: parts[1].bytes, entries: entries,
            messageRecords: records.map(\.bytes), previousOutcome: previous)
    }
}

/// `tw_append_batch`: the events of one or more commands, appended only at the expected version.
struct AppendCall: RedisCall {
    enum Reply: Sendable, Hashable {
        case appended(version: Int64)
        case conflict(actualVersion: Int64)
        /// `command`: the index in the request (0-based).
        case duplicate(command: Int, version: Int64, result: String)
        case reused(command: Int)
    }

    let command: RedisCommand

    /// `snapshotJSON`: `request.snapshot` encoded; the snapshot key and it go last.
    init(_ request: AppendRequest, snapshotJSON: String? = nil, layout: KeyLayout) {
        let threadId = request.threadId
        var arguments = [
            request.mayFollowMessages ? "\(request.expectedVersion)+" : String(request.expectedVersion), threadId.rawValue,
            String(request.at), String(request.commands.count),
        ]
        for command in request.commands {
            let idempotency = command.idempotency
            arguments += [
                command.commandId, command.actor.rawValue, idempotency?.fingerprint ?? "", idempotency?.result ?? "",
                String(idempotency?.timeToLiveSeconds ?? 0), String(command.events.count),
            ]
            for event in command.events {
                arguments.append(event.typeName)
                arguments.append(event.encodedData())
            }
        }
        var keys =
            [layout.threadStream(threadId), layout.changeLog(of: threadId), layout.messageIndex(threadId)]
            + request.commands.map { layout.idempotencyRecord(threadId, commandId: $0.commandId) }
            + [layout.activityIndex(of: threadId)]
        if let snapshotJSON, let snapshot = request.snapshot {
            keys.append(layout.snapshot(threadId))
            arguments += [String(snapshot.version), snapshotJSON]
        }
        command = .fcall("tw_append_batch", keys: keys, arguments: arguments)
    }

    func decode(_ reply: RedisValue) throws(RedisError) -> Reply {
        guard let parts = reply.array, let status = parts.first?.string, parts.count >= 2, let first = parts[1].int.map(Int64.init)
        else { throw unexpected(reply) }
        switch status {
        case "appended": return .appended(version: first)
        case "conflict": return .conflict(actualVersion: first)
        case "duplicate":
            // Lua counts commands from 1.
            guard parts.count == 4, first >= 1, let version = parts[2].int.map(Int64.init) else { throw unexpected(reply) }
            return .duplicate(command: Int(first) - 1, version: version, result: parts[3].string ?? "")
        case "reused":
            guard first >= 1 else { throw unexpected(reply) }
            return .reused(command: Int(first) - 1)
        default: throw unexpected(reply)
        }
    }
}

/// `XRANGE` of a thread's stream after a version.
struct ReadEventsCall: RedisCall {
    let command: RedisCommand

    init(_ threadId: ThreadID, after version: Int64, limit: Int, layout: KeyLayout) {
        command = RedisCommand("XRANGE", layout.threadStream(threadId), "\(version + 1)-0", "+", "COUNT", String(limit))
    }

    func decode(_ reply: RedisValue) throws(RedisError) -> [RedisValue] {
        guard let entries = reply.array else { throw unexpected(reply) }
        return entries
    }
}
