/// One reply from Redis (RESP2). Error replies are not values: they surface as
/// `RedisError` with code `.server`.
public enum RedisValue: Sendable, Hashable {
    case null
    /// A status reply such as `OK` or `PONG`.
    case simpleString(String)
    case integer(Int)
    /// Binary-safe payload; use `string` for UTF-8 text.
    case bulkString([UInt8])
    case array([RedisValue])

    /// The text of a bulk string (decoded as UTF-8) or a status reply.
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes): Self.validUTF8(bytes)
        default: nil
        }
    }

    /// `String(validating:as:)` is generic and unspecialised (about 900
    /// instructions a field in a profile of get-thread); decoding repairs
    /// invalid bytes instead, so a text that kept every byte was valid.
    /// ASCII, which nearly every field is, needs neither.
    private static func validUTF8(_ bytes: [UInt8]) -> String? {
        let text = String(decoding: bytes, as: UTF8.self)
        if bytes.allSatisfy({ $0 < 0x80 }) { return text }
        var copy = text
        let unchanged = copy.withUTF8 { decoded in
            bytes.withUnsafeBytes { original in decoded.count == original.count && decoded.elementsEqual(original) }
        }
        return unchanged ? text : nil
    }

    /// An integer reply, or a string reply that parses as an integer
    /// (Redis answers many counters, e.g. `HGET` of a counter field, as bulk strings).
    public var int: Int? {
        switch self {
        case .integer(let value): value
        case .simpleString, .bulkString: string.flatMap { Int($0) }
        default: nil
        }
    }

    public var array: [RedisValue]? {
        if case .array(let elements) = self { elements } else { nil }
    }

    /// The raw bytes of a bulk string, or the UTF-8 bytes of a status reply.
    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let bytes): bytes
        case .simpleString(let text): Array(text.utf8)
        default: nil
        }
    }

    public var isNull: Bool {
        if case .null = self { true } else { false }
    }
}

extension RedisValue {
    /// A flat `[name, value, name, value, …]` reply (HGETALL, XINFO, a
    /// stream entry's fields, WITHSCORES) as its pairs; a trailing odd element is dropped.
    public var pairs: [(name: RedisValue, value: RedisValue)] {
        let flat = array ?? []
        return stride(from: 0, to: flat.count - 1, by: 2).map { (flat[$0], flat[$0 + 1]) }
    }

    /// `pairs` as a dictionary of UTF-8 names and values (binary ones are left out).
    public var fieldMap: [String: String] {
        guard case .array(let flat) = self else { return [:] }
        var fields: [String: String] = [:]
        fields.reserveCapacity(flat.count / 2)
        var index = 0
        while index + 1 < flat.count {
            if let name = flat[index].string, let value = flat[index + 1].string { fields[name] = value }
            index += 2
        }
        return fields
    }
}
