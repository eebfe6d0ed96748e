/// The Redis Cluster slot of a key: CRC16 (XMODEM: polynomial 0x1021, initial
/// value 0) of the key, or of its hash tag, modulo 16384. The hash tag is the
/// text between the first `{` and the first `}` after it, when that text is
/// not empty; keys that share a tag share a slot, which is how every call of
/// ours that touches several keys stays single-slot.
public struct HashSlot: RawRepresentable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public static let count = 16_384

    public let rawValue: UInt16

    public init?(rawValue: UInt16) {
        guard Int(rawValue) < Self.count else { return nil }
        self.rawValue = rawValue
    }

    public init(key: some Collection<UInt8>) {
        rawValue = Self.crc16(Self.hashTag(of: key)) & UInt16(Self.count - 1)
    }

    public init(key: String) {
        self.init(key: Array(key.utf8))
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { String(rawValue) }

    /// The part of `key` that is hashed: its tag, or all of it.
    static func hashTag<Key: Collection<UInt8>>(of key: Key) -> Key.SubSequence {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")) else { return key[...] }
        let afterOpen = key.index(after: open)
        guard let close = key[afterOpen...].firstIndex(of: UInt8(ascii: "}")), close != afterOpen else { return key[...] }
        return key[afterOpen..<close]
    }

    static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var value = UInt16(index) << 8
        for _ in 0..<8 {
            value = value & 0x8000 != 0 ? (value << 1) ^ 0x1021 : value << 1
        }
        return value
    }
}
