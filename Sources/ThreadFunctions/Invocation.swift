public import Foundation

/// One call of a function as the transport delivers it: the JSON body's
/// bytes (empty for a query) and the route's parameters (path, and a query's
/// query string). The handler's `Input` is decoded straight from it, once:
/// parameters stand in for fields of the body's top level.
public struct Invocation: Sendable {
    public var body: Data
    public var parameters: [String: String]
    /// The account a verified token names (its `sub`), when the edge
    /// authenticates: it stands in for `accountId`, and an `accountId` the
    /// request gives must name the same account (else 403 `account_mismatch`).
    public var authenticatedAccount: String?

    public init(body: Data = Data(), parameters: [String: String] = [:], authenticatedAccount: String? = nil) {
        self.body = body
        self.parameters = parameters
        self.authenticatedAccount = authenticatedAccount
        if let authenticatedAccount { self.parameters[Self.actingAccountField] = authenticatedAccount }
    }

    /// The input field every function names its acting account by.
    public static let actingAccountField = "accountId"
}

extension CodingUserInfoKey {
    fileprivate static let invocationParameters = CodingUserInfoKey(rawValue: "threadweave.invocationParameters")!
}

extension InvocationCoding {
    /// Decodes `Input` from the body with the parameters laid over its top
    /// level. A field given both in the body and as a parameter must agree.
    static func decode<Input: Decodable>(_ invocation: Invocation) throws(FunctionError) -> Input {
        if let quick = Input.self as? any QuickDecodableInput.Type,
            let input = quick.quickDecode(body: invocation.body, parameters: invocation.parameters) as? Input
        {
            return input
        }
        return try decodeWithCodable(invocation)
    }

    /// `decode` through Codable alone: every shape, and the refusals' words.
    static func decodeWithCodable<Input: Decodable>(_ invocation: Invocation) throws(FunctionError) -> Input {
        do {
            // A query (no body) is its parameters alone: no JSON to parse.
            if invocation.body.isEmpty {
                return try Input(from: OverlayDecoder(inner: nil, parameters: invocation.parameters))
            }
            let decoder = JSONDecoder()
            decoder.userInfo[.invocationParameters] = invocation.parameters
            return try decoder.decode(ParameterOverlay<Input>.self, from: invocation.body).value
        } catch let error as DecodingError {
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty {
                throw FunctionError(.invalidRequest, "the body is not valid JSON", underlying: error)
            }
            if invocation.authenticatedAccount != nil, case .dataCorrupted(let context) = error,
                context.debugDescription == differsFromURL,
                context.codingPath.map(\.stringValue) == [Invocation.actingAccountField]
            {
                throw FunctionError(.accountMismatch, "accountId names another account than the bearer token")
            }
            throw FunctionError(.invalidRequest, describe(error), underlying: error)
        } catch {
            throw FunctionError(.invalidRequest, "the request body does not match the function's input", underlying: error)
        }
    }
}

/// Decodes `Value` through `OverlayDecoder`, so parameters reach its top level.
private struct ParameterOverlay<Value: Decodable>: Decodable {
    let value: Value

    init(from decoder: any Decoder) throws {
        let parameters = decoder.userInfo[.invocationParameters] as? [String: String] ?? [:]
        value = try Value(from: OverlayDecoder(inner: decoder, parameters: parameters))
    }
}

private struct OverlayDecoder: Decoder {
    /// The body's decoder; nil when there is no body.
    let inner: (any Decoder)?
    let parameters: [String: String]
    var codingPath: [any CodingKey] { inner?.codingPath ?? [] }
    var userInfo: [CodingUserInfoKey: Any] { inner?.userInfo ?? [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(OverlayContainer(inner: try inner?.container(keyedBy: type), parameters: parameters))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { try requireInner([Any].self).unkeyedContainer() }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { try requireInner(Any.self).singleValueContainer() }

    private func requireInner(_ expected: Any.Type) throws -> any Decoder {
        guard let inner else {
            throw DecodingError.typeMismatch(expected, .init(codingPath: [], debugDescription: "the parameters are an object"))
        }
        return inner
    }
}

/// The body's top-level object (if any) with the parameters laid over it.
private struct OverlayContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let inner: KeyedDecodingContainer<Key>?
    let parameters: [String: String]

    var codingPath: [any CodingKey] { inner?.codingPath ?? [] }
    var allKeys: [Key] {
        let bodyKeys = inner?.allKeys ?? []
        return bodyKeys + parameters.keys.compactMap { Key(stringValue: $0) }.filter { inner?.contains($0) != true }
    }

    func contains(_ key: Key) -> Bool { parameters[key.stringValue] != nil || inner?.contains(key) == true }

    func decodeNil(forKey key: Key) throws -> Bool {
        guard parameters[key.stringValue] == nil else { return false }
        return try requireInner(key).decodeNil(forKey: key)
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        guard let text = parameters[key.stringValue] else { return try requireInner(key).decode(type, forKey: key) }
        // Ids compare as ids: a ULID's lowercase text names the same one.
        if let inner, inner.contains(key), (try? inner.decode(String.self, forKey: key))?.uppercased() != text.uppercased() {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: inner, debugDescription: InvocationCoding.differsFromURL)
        }
        return try T(from: TextDecoder(text: text, codingPath: codingPath + [key]))
    }

    /// The body's container, for a key no parameter gives; without a body the key is missing.
    private func requireInner(_ key: Key) throws -> KeyedDecodingContainer<Key> {
        guard let inner else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "no value for \(key.stringValue)"))
        }
        return inner
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decode(Lossless<Bool>.self, forKey: key).value }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try decode(Lossless<String>.self, forKey: key).value }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decode(Lossless<Double>.self, forKey: key).value }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try decode(Lossless<Float>.self, forKey: key).value }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decode(Lossless<Int>.self, forKey: key).value }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try decode(Lossless<Int8>.self, forKey: key).value }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try decode(Lossless<Int16>.self, forKey: key).value }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try decode(Lossless<Int32>.self, forKey: key).value }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try decode(Lossless<Int64>.self, forKey: key).value }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try decode(Lossless<UInt>.self, forKey: key).value }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try decode(Lossless<UInt8>.self, forKey: key).value }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try decode(Lossless<UInt16>.self, forKey: key).value }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try decode(Lossless<UInt32>.self, forKey: key).value }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try decode(Lossless<UInt64>.self, forKey: key).value }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try requireInner(key).nestedContainer(keyedBy: type, forKey: key)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try requireInner(key).nestedUnkeyedContainer(forKey: key)
    }

    func superDecoder() throws -> any Decoder {
        guard let inner else { throw DecodingError.typeMismatch(Any.self, .init(codingPath: codingPath, debugDescription: "no body")) }
        return try inner.superDecoder()
    }

    func superDecoder(forKey key: Key) throws -> any Decoder { try requireInner(key).superDecoder(forKey: key) }
}

/// A primitive read from a body field as itself, or from a parameter's text.
private struct Lossless<Value: Decodable & LosslessStringConvertible>: Decodable {
    let value: Value

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = (decoder as? TextDecoder)?.text {
            guard let value = Value(text) else {
                throw DecodingError.typeMismatch(Value.self, .init(codingPath: decoder.codingPath, debugDescription: "not a \(Value.self)"))
            }
            self.value = value
        } else {
            value = try container.decode(Value.self)
        }
    }
}

/// A parameter's text as a decoder: strings decode as themselves, numbers and
/// booleans from their text (`?limit=20`), anything structured is a type mismatch.
private struct TextDecoder: Decoder, SingleValueDecodingContainer {
    let text: String
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        throw DecodingError.typeMismatch([String: Any].self, .init(codingPath: codingPath, debugDescription: "a parameter is text"))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw DecodingError.typeMismatch([Any].self, .init(codingPath: codingPath, debugDescription: "a parameter is text"))
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    func decodeNil() -> Bool { false }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        if type == String.self { return text as! T }
        return try T(from: self)
    }

    private func parse<Value: LosslessStringConvertible>(_ type: Value.Type) throws -> Value {
        guard let value = Value(text) else {
            throw DecodingError.typeMismatch(Value.self, .init(codingPath: codingPath, debugDescription: "not a \(Value.self)"))
        }
        return value
    }

    func decode(_ type: Bool.Type) throws -> Bool { try parse(type) }
    func decode(_ type: String.Type) throws -> String { text }
    func decode(_ type: Double.Type) throws -> Double { try parse(type) }
    func decode(_ type: Float.Type) throws -> Float { try parse(type) }
    func decode(_ type: Int.Type) throws -> Int { try parse(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try parse(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try parse(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try parse(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try parse(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try parse(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try parse(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try parse(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try parse(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try parse(type) }
}
