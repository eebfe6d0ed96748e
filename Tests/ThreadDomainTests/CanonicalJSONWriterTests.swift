import Foundation
import Testing
import ThreadDomain

/// Numbers in decimal, as `JSONEncoder` writes them, through each of the writer's integer overloads.
@Suite struct CanonicalJSONWriterTests {
    @Test(arguments: [Int64.min, -1_234_567, -10, -1, 0, 7, 10, 1_733_270_400_123, Int64.max])
    func anInt64IsWrittenAsJSONEncoderWritesIt(value: Int64) throws {
        var writer = CanonicalJSONWriter()
        writer.beginArray()
        writer.integer(value)
        writer.integer(Int(value))
        writer.endArray()
        #expect(writer.bytes == Array(try JSONEncoder().encode([value, value])))
    }

    @Test(arguments: [UInt64(0), 42, UInt64(Int64.max) + 1, UInt64.max])
    func anyOtherIntegerIsWrittenInDecimal(value: UInt64) throws {
        let narrow = Int32(truncatingIfNeeded: value)
        var writer = CanonicalJSONWriter()
        writer.beginArray()
        writer.integer(value)
        writer.integer(narrow)
        writer.endArray()
        #expect(String(decoding: writer.bytes, as: UTF8.self) == "[\(value),\(narrow)]")
    }
}
