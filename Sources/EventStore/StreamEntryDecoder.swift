public import RedisClient
public import ThreadDomain

/// Reads thread-stream entries (`<version>-0` → `type at actor cmd data`) and
/// change-log entries back into recorded events.
public enum StreamEntryDecoder {
    /// A stream entry as XRANGE/XREAD answer it: `[id, [field, value, …]]`.
    public static func recordedEvent(from entry: RedisValue) throws(EventStoreError) -> RecordedEvent {
        guard let pair = entry.array, pair.count == 2, let id = pair[0].string, pair[1].array != nil,
            let version = id.split(separator: "-").first.flatMap({ Int64($0) })
        else { throw EventStoreError(.corruptData, "malformed stream entry") }
        return try recordedEvent(version: version, fields: pair[1].fieldMap)
    }

    /// A change-log entry's fields (`thread version type at actor cmd data`).
    public static func changeLogEntry(fields flat: [RedisValue]) throws(EventStoreError) -> (threadId: ThreadID, event: RecordedEvent) {
        let fields = RedisValue.array(flat).fieldMap
        guard let thread = fields["thread"].flatMap(ThreadID.init), let version = fields["version"].flatMap({ Int64($0) })
        else { throw EventStoreError(.corruptData, "change-log entry without a valid thread or version") }
        return (thread, try recordedEvent(version: version, fields: fields))
    }

    static func recordedEvent(version: Int64, fields: [String: String]) throws(EventStoreError) -> RecordedEvent {
        guard let type = fields["type"], let data = fields["data"], let at = fields["at"].flatMap({ Int64($0) }),
            let actor = fields["actor"].flatMap(AccountID.init)
        else { throw EventStoreError(.corruptData, "event \(version) lacks type, data, at or actor") }
        let event: ThreadEvent
        do {
            event = try ThreadEvent.decode(type: type, data: data)
        } catch {
            throw EventStoreError(.corruptData, "event \(version) of type \(type) is undecodable", underlying: error)
        }
        return RecordedEvent(version: version, at: at, actor: actor, commandId: fields["cmd"] ?? "", event: event)
    }
}
