public import RedisClient
public import ThreadDomain

/// An event as its stream entry holds it, its `data` still the JSON text.
/// The read model's `tw_rm_apply` reads and checks that JSON itself, so the
/// projector hands events on as they are stored instead of decoding each one
/// and encoding it again.
public struct StoredEvent: Sendable, Hashable {
    public var version: Int64
    /// Unix milliseconds.
    public var at: Int64
    public var actor: AccountID
    public var commandId: String
    public var typeName: String
    public var data: String

    public init(version: Int64, at: Int64, actor: AccountID, commandId: String, typeName: String, data: String) {
        self.version = version
        self.at = at
        self.actor = actor
        self.commandId = commandId
        self.typeName = typeName
        self.data = data
    }

    public init(_ recorded: RecordedEvent) {
        self.init(
            version: recorded.version, at: recorded.at, actor: recorded.actor, commandId: recorded.commandId,
            typeName: recorded.event.typeName, data: recorded.event.encodedData())
    }

    public func decoded() throws(EventStoreError) -> RecordedEvent {
        let event: ThreadEvent
        do {
            event = try ThreadEvent.decode(type: typeName, data: data)
        } catch {
            throw EventStoreError(.corruptData, "event \(version) of type \(typeName) is undecodable", underlying: error)
        }
        return RecordedEvent(version: version, at: at, actor: actor, commandId: commandId, event: event)
    }
}

/// Reads thread-stream entries (`<version>-0` → `type at actor cmd data`) and
/// change-log entries back into events.
public enum StreamEntryDecoder {
    /// A stream entry as XRANGE/XREAD answer it: `[id, [field, value, …]]`.
    public static func recordedEvent(from entry: RedisValue) throws(EventStoreError) -> RecordedEvent {
        try storedEvent(from: entry).decoded()
    }

    /// `recordedEvent(from:)` without decoding the data.
    public static func storedEvent(from entry: RedisValue) throws(EventStoreError) -> StoredEvent {
        guard let pair = entry.array, pair.count == 2, let id = pair[0].string, let flat = pair[1].array,
            let version = id.split(separator: "-").first.flatMap({ Int64($0) })
        else { throw EventStoreError(.corruptData, "malformed stream entry") }
        return try storedEvent(version: version, fields: EntryFields(flat))
    }

    /// A change-log entry's fields (`thread version type at actor cmd data`), its data left undecoded.
    public static func changeLogEntry(fields flat: [RedisValue]) throws(EventStoreError) -> (threadId: ThreadID, event: StoredEvent) {
        let fields = EntryFields(flat)
        guard let thread = fields.thread.flatMap(ThreadID.init), let version = fields.version.flatMap({ Int64($0) })
        else { throw EventStoreError(.corruptData, "change-log entry without a valid thread or version") }
        return (thread, try storedEvent(version: version, fields: fields))
    }

    private static func storedEvent(version: Int64, fields: EntryFields) throws(EventStoreError) -> StoredEvent {
        guard let type = fields.type, let data = fields.data, let at = fields.at.flatMap({ Int64($0) }),
            let actor = fields.actor.flatMap(AccountID.init)
        else { throw EventStoreError(.corruptData, "event \(version) lacks type, data, at or actor") }
        return StoredEvent(version: version, at: at, actor: actor, commandId: fields.cmd ?? "", typeName: type, data: data)
    }

    /// The fields an entry may hold, read straight off the flat reply: every
    /// change-log entry passes through here, and a dictionary of them cost
    /// more than the rest of the read.
    private struct EntryFields {
        var thread, version, type, at, actor, cmd, data: String?

        init(_ flat: [RedisValue]) {
            var index = 0
            while index + 1 < flat.count {
                defer { index += 2 }
                // Names are matched on their bytes: made into strings, they were half this decoder's cost.
                guard let name = flat[index].bytes, let known = Self.names.firstIndex(of: name),
                    let value = flat[index + 1].string
                else { continue }
                switch known {
                case 0: thread = value
                case 1: version = value
                case 2: type = value
                case 3: at = value
                case 4: actor = value
                case 5: cmd = value
                default: data = value
                }
            }
        }

        /// In the order of the `switch` above.
        private static let names = ["thread", "version", "type", "at", "actor", "cmd", "data"].map { Array($0.utf8) }
    }
}
