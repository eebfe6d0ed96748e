/// Writes compact JSON byte for byte as `JSONEncoder` with `.sortedKeys` and
/// `.withoutEscapingSlashes` writes it, for the types on every request's path
/// (a thread view, an event's data): the Codable encoder costs tens of
/// thousands of instructions per small object in boxing and generic metadata
/// look-ups, this a few hundred. Callers add an object's keys in sorted order;
/// tests hold each writer to `JSONEncoder`'s bytes.
public struct CanonicalJSONWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    /// No element written yet in the innermost object or array.
    private var atFirstElement = true
    /// A key was just written: its value needs no comma.
    private var afterKey = false

    public init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    public mutating func beginObject() {
        separateValue()
        bytes.append(UInt8(ascii: "{"))
        atFirstElement = true
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        atFirstElement = false
    }

    public mutating func beginArray() {
        separateValue()
        bytes.append(UInt8(ascii: "["))
        atFirstElement = true
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        atFirstElement = false
    }

    /// An object's next key; keys are plain ASCII names, written as they are.
    public mutating func key(_ name: StaticString) {
        if !atFirstElement { bytes.append(UInt8(ascii: ",")) }
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    public mutating func string(_ value: String) {
        separateValue()
        bytes.append(UInt8(ascii: "\""))
        var text = value
        text.withUTF8 { utf8 in
            var pending = 0
            for index in utf8.indices {
                let byte = utf8[index]
                if byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                    bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[pending..<index]))
                    appendEscape(of: byte)
                    pending = index + 1
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[pending...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    public mutating func integer(_ value: Int64) {
        separateValue()
        // Digits straight into the bytes: `String(value)` allocates a string per number.
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        // 19 digits at most, right to left into a buffer on the stack, then one append.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var first = digits.count
            repeat {
                first -= 1
                digits[first] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: digits[first...]))
        }
    }

    public mutating func integer(_ value: Int) {
        integer(Int64(value))
    }

    /// Other integer types; the two above are concrete because a generic
    /// call from another module runs unspecialised (700 instructions a number).
    public mutating func integer(_ value: some BinaryInteger) {
        guard let signed = Int64(exactly: value) else {
            separateValue()
            bytes.append(contentsOf: String(value).utf8)
            return
        }
        integer(signed)
    }

    /// A list of ids: their canonical characters need no escaping.
    public mutating func ids(_ values: [ULID]) {
        beginArray()
        for value in values {
            separateValue()
            bytes.append(UInt8(ascii: "\""))
            bytes.append(contentsOf: value.rawValue.utf8)
            bytes.append(UInt8(ascii: "\""))
        }
        endArray()
    }

    /// `key` and its value, left out when the value is nil (as `encodeIfPresent` does).
    public mutating func field(_ name: StaticString, _ value: String?) {
        guard let value else { return }
        key(name)
        string(value)
    }

    public mutating func field(_ name: StaticString, _ value: Int64?) {
        guard let value else { return }
        key(name)
        integer(value)
    }

    private mutating func separateValue() {
        if afterKey {
            afterKey = false
        } else if !atFirstElement {
            bytes.append(UInt8(ascii: ","))
        }
        atFirstElement = false
    }

    private mutating func appendEscape(of byte: UInt8) {
        bytes.append(UInt8(ascii: "\\"))
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(byte)
        case 0x08: bytes.append(UInt8(ascii: "b"))
        case 0x0C: bytes.append(UInt8(ascii: "f"))
        case 0x0A: bytes.append(UInt8(ascii: "n"))
        case 0x0D: bytes.append(UInt8(ascii: "r"))
        case 0x09: bytes.append(UInt8(ascii: "t"))
        default:
            func hexDigit(_ value: UInt8) -> UInt8 { value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10 }
            bytes.append(UInt8(ascii: "u"))
            bytes.append(UInt8(ascii: "0"))
            bytes.append(UInt8(ascii: "0"))
            bytes.append(hexDigit(byte >> 4))
            bytes.append(hexDigit(byte & 0xF))
        }
    }
}

/// A type whose JSON `CanonicalJSONWriter` writes by hand, the same bytes as
/// its `Encodable` conformance gives through a sorted-keys `JSONEncoder`.
public protocol CanonicalJSONWritable {
    func write(to writer: inout CanonicalJSONWriter)
}

extension CanonicalJSONWritable {
    public var canonicalJSON: [UInt8] {
        var writer = CanonicalJSONWriter()
        write(to: &writer)
        return writer.bytes
    }
}
