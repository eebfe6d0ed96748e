import Foundation

/// A Universally Unique Lexicographically Sortable Identifier: 48 bits of unix
/// milliseconds followed by 80 random bits, written as 26 Crockford base32
/// characters. The canonical (uppercase) text sorts in time order, so the
/// text itself is the value — comparing, hashing and storing need no decoding.
public struct ULID: Sendable, Hashable, Comparable, CustomStringConvertible, LosslessStringConvertible {
    /// Always 26 characters of the uppercase Crockford alphabet, first one `0`–`7`.
    public let rawValue: String

    static let length = 26
    /// 2^48 − 1: the largest timestamp the 10 time characters can hold.
    public static let maxTimestampMilliseconds: Int64 = (1 << 48) - 1

    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    /// Parses a ULID, accepting lowercase and normalising it to uppercase.
    /// Refuses any length but 26, characters outside the alphabet, and a first
    /// character above `7` (the text would then exceed 128 bits).
    public init?(_ string: String) {
        // Read on every request (ids in URLs, bodies and read-model hashes):
        // one pass over contiguous bytes, and canonical text is kept as it is.
        var text = string
        let isCanonical: Bool? = text.withUTF8 { bytes in
            guard bytes.count == Self.length, let first = Self.value(ofByte: bytes[0]), first <= 7 else { return nil }
            var isCanonical = true
            for byte in bytes {
                guard Self.value(ofByte: byte) != nil else { return nil }
                if byte >= UInt8(ascii: "a") { isCanonical = false }
            }
            return isCanonical
        }
        switch isCanonical {
        case nil: return nil
        case true?: rawValue = text
        case false?: rawValue = String(decoding: text.utf8.map { $0 >= UInt8(ascii: "a") ? $0 - 0x20 : $0 }, as: UTF8.self)
        }
    }

    /// The 5-bit value of an alphabet byte of either case; nil outside the
    /// alphabet (Crockford's I/L/O/U aliases are refused: only canonical text is an id).
    private static func value(ofByte byte: UInt8) -> UInt8? {
        let upper = byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") ? byte - 0x20 : byte
        switch upper {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return upper - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "H"): return upper - UInt8(ascii: "A") + 10
        case UInt8(ascii: "J"), UInt8(ascii: "K"): return upper - UInt8(ascii: "J") + 18
        case UInt8(ascii: "M"), UInt8(ascii: "N"): return upper - UInt8(ascii: "M") + 20
        case UInt8(ascii: "P")...UInt8(ascii: "T"): return upper - UInt8(ascii: "P") + 22
        case UInt8(ascii: "V")...UInt8(ascii: "Z"): return upper - UInt8(ascii: "V") + 27
        default: return nil
        }
    }

    private init(value: UInt128) {
        // 26 × 5 = 130 bits: the first character carries only the top 3.
        let characters = (0..<Self.length).map { index in
            Self.alphabet[Int(truncatingIfNeeded: (value >> (125 - 5 * index)) & 0x1F)]
        }
        self.rawValue = String(decoding: characters, as: UTF8.self)
    }

    /// A new ULID for the given time with 80 bits from `generator` (the
    /// system's secure one unless given). Ids made in the same millisecond
    /// are not ordered among themselves.
    public static func generate(timestampMilliseconds: Int64, using generator: inout some RandomNumberGenerator) -> ULID {
        precondition(
            (0...maxTimestampMilliseconds).contains(timestampMilliseconds),
            "ULID timestamp \(timestampMilliseconds) is outside 0...2^48-1"
        )
        let randomHigh = UInt128(generator.next() as UInt16)
        let randomLow = UInt128(generator.next() as UInt64)
        let time = UInt128(timestampMilliseconds)
        return ULID(value: time << 80 | randomHigh << 64 | randomLow)
    }

    public static func generate(timestampMilliseconds: Int64) -> ULID {
        var generator = SystemRandomNumberGenerator()
        return generate(timestampMilliseconds: timestampMilliseconds, using: &generator)
    }

    /// A new ULID for the current time.
    public static func generate(using generator: inout some RandomNumberGenerator) -> ULID {
        generate(timestampMilliseconds: currentMilliseconds(), using: &generator)
    }

    public static func generate() -> ULID {
        generate(timestampMilliseconds: currentMilliseconds())
    }

    /// The current unix milliseconds, as a new ULID's time characters hold them.
    public static func currentMilliseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// The unix milliseconds in the first 10 characters (3 + 9 × 5 = 48 bits).
    public var timestampMilliseconds: Int64 {
        rawValue.utf8.prefix(10).reduce(Int64(0)) { accumulated, byte in
            // Safe to unwrap: rawValue holds only canonical alphabet bytes.
            accumulated << 5 | Int64(Self.value(ofByte: byte)!)
        }
    }

    public var description: String { rawValue }

    public static func < (lhs: ULID, rhs: ULID) -> Bool {
        // Canonical text is ASCII, so byte order is time-then-randomness order.
        lhs.rawValue.utf8.lexicographicallyPrecedes(rhs.rawValue.utf8)
    }
}

extension ULID: Codable {
    /// Decodes from a single string; anything that isn't a ULID is a `DecodingError`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let ulid = ULID(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a ULID")
        }
        self = ulid
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// Lets `[ULID: …]` dictionaries encode as JSON objects keyed by the id
/// (instead of Codable's fallback of a flat key/value array).
extension ULID: CodingKeyRepresentable {
    private struct Key: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public var codingKey: any CodingKey { Key(stringValue: rawValue) }

    public init?<T: CodingKey>(codingKey: T) {
        self.init(codingKey.stringValue)
    }
}

public typealias ThreadID = ULID
public typealias AccountID = ULID
public typealias MessageID = ULID
