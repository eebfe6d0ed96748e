import ThreadDomain

/// The top-level keys an `Input` decodes, split by how it asks for them:
/// `decode` (required) or `decodeIfPresent` (optional). Read by decoding the
/// type from `RecordingDecoder`, so it is what the synthesized (or hand-written)
/// `init(from:)` really does, not what a list in a test claims.
struct InputKeys: Equatable, CustomStringConvertible {
    var required: Set<String> = []
    var optional: Set<String> = []
    var all: Set<String> { required.union(optional) }

    static func of<Input: Decodable>(_ type: Input.Type) throws -> InputKeys {
        let recorder = KeyRecorder()
        _ = try Input(from: RecordingDecoder(recorder: recorder, codingPath: []))
        return recorder.keys
    }

    var description: String { "required \(required.sorted()), optional \(optional.sorted())" }
}

private final class KeyRecorder {
    var keys = InputKeys()
}

/// Answers every question with a placeholder that any field of this service
/// accepts (a ULID for strings, 0 for numbers, no entries for arrays, absence
/// for optionals) and records the top-level keys. The default
/// `decodeIfPresent` asks `contains` first, which is how an optional key shows.
private struct RecordingDecoder: Decoder {
    let recorder: KeyRecorder
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(RecordingContainer<Key>(recorder: recorder, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { NoEntries(codingPath: codingPath) }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { Placeholder(codingPath: codingPath) }
}

private struct RecordingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let recorder: KeyRecorder
    let codingPath: [any CodingKey]
    var allKeys: [Key] { [] }
    private var isTopLevel: Bool { codingPath.isEmpty }

    init(recorder: KeyRecorder, codingPath: [any CodingKey]) {
        self.recorder = recorder
        self.codingPath = codingPath
    }

    func contains(_ key: Key) -> Bool {
        if isTopLevel { recorder.keys.optional.insert(key.stringValue) }
        return false
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        if isTopLevel { recorder.keys.optional.insert(key.stringValue) }
        return true
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        if isTopLevel, !recorder.keys.optional.contains(key.stringValue) { recorder.keys.required.insert(key.stringValue) }
        return try T(from: RecordingDecoder(recorder: recorder, codingPath: codingPath + [key]))
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decode(Placeholder.Value<Bool>.self, forKey: key).value }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try decode(Placeholder.Value<String>.self, forKey: key).value }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decode(Placeholder.Value<Double>.self, forKey: key).value }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try decode(Placeholder.Value<Float>.self, forKey: key).value }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decode(Placeholder.Value<Int>.self, forKey: key).value }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try decode(Placeholder.Value<Int8>.self, forKey: key).value }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try decode(Placeholder.Value<Int16>.self, forKey: key).value }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try decode(Placeholder.Value<Int32>.self, forKey: key).value }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try decode(Placeholder.Value<Int64>.self, forKey: key).value }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try decode(Placeholder.Value<UInt>.self, forKey: key).value }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try decode(Placeholder.Value<UInt8>.self, forKey: key).value }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try decode(Placeholder.Value<UInt16>.self, forKey: key).value }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try decode(Placeholder.Value<UInt32>.self, forKey: key).value }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try decode(Placeholder.Value<UInt64>.self, forKey: key).value }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        KeyedDecodingContainer(RecordingContainer<NestedKey>(recorder: recorder, codingPath: codingPath + [key]))
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { NoEntries(codingPath: codingPath + [key]) }
    func superDecoder() throws -> any Decoder { RecordingDecoder(recorder: recorder, codingPath: codingPath) }
    func superDecoder(forKey key: Key) throws -> any Decoder { RecordingDecoder(recorder: recorder, codingPath: codingPath + [key]) }
}

/// An array with no entries.
private struct NoEntries: UnkeyedDecodingContainer {
    let codingPath: [any CodingKey]
    var count: Int? { 0 }
    var isAtEnd: Bool { true }
    var currentIndex: Int { 0 }

    mutating func decodeNil() throws -> Bool { true }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        throw DecodingError.valueNotFound(type, .init(codingPath: codingPath, debugDescription: "no entries"))
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        throw DecodingError.valueNotFound(type, .init(codingPath: codingPath, debugDescription: "no entries"))
    }
    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { self }
    mutating func superDecoder() throws -> any Decoder {
        throw DecodingError.valueNotFound(Void.self, .init(codingPath: codingPath, debugDescription: "no entries"))
    }
}

/// One primitive value: a valid ULID for a string (every string field of an
/// input accepts one), zero for a number, false for a boolean.
private struct Placeholder: SingleValueDecodingContainer {
    static let ulid = "01J0000000000000000000TEST"
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { false }
    func decode(_ type: Bool.Type) throws -> Bool { false }
    func decode(_ type: String.Type) throws -> String { Self.ulid }
    func decode(_ type: Double.Type) throws -> Double { 0 }
    func decode(_ type: Float.Type) throws -> Float { 0 }
    func decode(_ type: Int.Type) throws -> Int { 0 }
    func decode(_ type: Int8.Type) throws -> Int8 { 0 }
    func decode(_ type: Int16.Type) throws -> Int16 { 0 }
    func decode(_ type: Int32.Type) throws -> Int32 { 0 }
    func decode(_ type: Int64.Type) throws -> Int64 { 0 }
    func decode(_ type: UInt.Type) throws -> UInt { 0 }
    func decode(_ type: UInt8.Type) throws -> UInt8 { 0 }
    func decode(_ type: UInt16.Type) throws -> UInt16 { 0 }
    func decode(_ type: UInt32.Type) throws -> UInt32 { 0 }
    func decode(_ type: UInt64.Type) throws -> UInt64 { 0 }
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        switch type {
        case is String.Type: return Self.ulid as! T
        case is Bool.Type: return false as! T
        case let numeric as any (Numeric & Decodable).Type: return Self.zero(numeric) as! T
        default: return try T(from: PlaceholderDecoder(codingPath: codingPath))
        }
    }

    private static func zero<N: Numeric>(_ type: N.Type) -> Any { N.zero }

    /// Reads a primitive through the placeholder, for the typed `decode` overloads.
    struct Value<Primitive: Decodable>: Decodable {
        let value: Primitive
        init(from decoder: any Decoder) throws { value = try decoder.singleValueContainer().decode(Primitive.self) }
    }
}

private struct PlaceholderDecoder: Decoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(RecordingContainer<Key>(recorder: KeyRecorder(), codingPath: codingPath))
    }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { NoEntries(codingPath: codingPath) }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { Placeholder(codingPath: codingPath) }
}
