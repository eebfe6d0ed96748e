import Foundation
import Testing
import ThreadDomain

@Suite struct ULIDTests {
    @Test func parsesCanonicalText() throws {
        let id = try #require(ULID("01ARYZ6S41TSV4RRFFQ69G5FAV"))
        #expect(id.rawValue == "01ARYZ6S41TSV4RRFFQ69G5FAV")
        #expect(id.description == "01ARYZ6S41TSV4RRFFQ69G5FAV")
        #expect(id.timestampMilliseconds == 1_469_918_176_385)  // the ULID spec's example
    }

    @Test func normalisesLowercaseToUppercase() {
        #expect(ULID("01aryz6s41tsv4rrffq69g5fav")?.rawValue == "01ARYZ6S41TSV4RRFFQ69G5FAV")
        #expect(ULID("01aryz6s41tsv4rrffq69g5fav") == ULID("01ARYZ6S41TSV4RRFFQ69G5FAV"))
    }

    @Test(arguments: [
        "",
        "01ARYZ6S41TSV4RRFFQ69G5FA",    // 25
        "01ARYZ6S41TSV4RRFFQ69G5FAVX",  // 27
        "01ARYZ6S41TSV4RRFFQ69G5FAI",   // I is not in the alphabet
        "01ARYZ6S41TSV4RRFFQ69G5FAL",   // nor L
        "01ARYZ6S41TSV4RRFFQ69G5FAO",   // nor O
        "01ARYZ6S41TSV4RRFFQ69G5FAU",   // nor U
        "01ARYZ6S41TSV4RRFFQ69G5FA-",
        "01ARYZ6S41TSV4RRFFQ69G5FAé",
        "01ARYZ6S41TSV4RRFFQ69G5FA ",
        "81ARYZ6S41TSV4RRFFQ69G5FAV",   // first character above 7 overflows 128 bits
        "ZZZZZZZZZZZZZZZZZZZZZZZZZZ",
    ])
    func refusesInvalidText(_ text: String) {
        #expect(ULID(text) == nil)
    }

    @Test func acceptsExactlyTheAlphabetInEitherCaseAtEveryPosition() {
        let alphabet = Set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        for position in [1, 13, 25] {
            for byte in UInt8(0)..<128 {
                var bytes = Array("01ARYZ6S41TSV4RRFFQ69G5FAV".utf8)
                bytes[position] = byte
                let character = Character(Unicode.Scalar(byte))
                let parsed = ULID(String(decoding: bytes, as: UTF8.self))
                #expect((parsed != nil) == alphabet.contains(Character(character.uppercased())), "byte \(byte) at \(position)")
                if let parsed {
                    let upper = Array(character.uppercased().utf8)[0]
                    #expect(Array(parsed.rawValue.utf8)[position] == upper)
                }
            }
        }
    }

    @Test func acceptsTheLargestValue() {
        #expect(ULID("7ZZZZZZZZZZZZZZZZZZZZZZZZZ")?.timestampMilliseconds == ULID.maxTimestampMilliseconds)
    }

    @Test(arguments: [0, 1, 1_469_918_176_385, 1_750_000_000_000, (1 << 48) - 1] as [Int64])
    func generatedIdsCarryTheirTimestamp(_ milliseconds: Int64) throws {
        let id = ULID.generate(timestampMilliseconds: milliseconds)
        #expect(id.timestampMilliseconds == milliseconds)
        #expect(id.rawValue.count == 26)
        #expect(ULID(id.rawValue) == id)
    }

    @Test func generatedTimePrefixIsTheSpecEncoding() {
        #expect(ULID.generate(timestampMilliseconds: 1_469_918_176_385).rawValue.hasPrefix("01ARYZ6S41"))
        #expect(ULID.generate(timestampMilliseconds: 0).rawValue.hasPrefix("0000000000"))
        #expect(ULID.generate(timestampMilliseconds: ULID.maxTimestampMilliseconds).rawValue.hasPrefix("7ZZZZZZZZZ"))
    }

    @Test func generatedIdsInOneMillisecondAreDistinct() {
        let ids = (0..<1_000).map { _ in ULID.generate(timestampMilliseconds: 42) }
        #expect(Set(ids).count == 1_000)
    }

    @Test func generateUsesTheCurrentTime() {
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        let id = ULID.generate()
        let after = Int64(Date().timeIntervalSince1970 * 1000)
        #expect((before...after).contains(id.timestampMilliseconds))
    }

    /// A reserve hands out fresh bits across its refills (256 bytes each): every
    /// draw distinct, every bit position seen both set and clear.
    @Test func aRandomReserveDrawsFreshBitsAcrossRefills() {
        var reserve = RandomReserve()
        let draws = (0..<1_000).map { _ in reserve.next() }
        #expect(Set(draws).count == draws.count)
        #expect(draws.reduce(0, |) == UInt64.max)
        #expect(draws.reduce(UInt64.max, &) == 0)
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        let ids = (0..<1_000).map { _ in ULID.generate(using: &reserve) }
        let after = Int64(Date().timeIntervalSince1970 * 1000)
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { (before...after).contains($0.timestampMilliseconds) && ULID($0.rawValue) == $0 })
    }

    @Test func ordersByTimeThenText() {
        let earlier = ULID.generate(timestampMilliseconds: 1_000)
        let later = ULID.generate(timestampMilliseconds: 1_001)
        #expect(earlier < later)
        #expect(!(later < earlier))
        #expect(ULID("01ARYZ6S41TSV4RRFFQ69G5FAV")! < ULID("01ARYZ6S41TSV4RRFFQ69G5FAW")!)
        let shuffled = (0..<50).map { ULID.generate(timestampMilliseconds: Int64($0) * 7) }.shuffled()
        #expect(shuffled.sorted().map(\.timestampMilliseconds) == (0..<50).map { Int64($0) * 7 })
    }

    @Test func codesAsASingleString() throws {
        let id = ULID("01ARYZ6S41TSV4RRFFQ69G5FAV")!
        let json = String(decoding: try JSONEncoder().encode([id]), as: UTF8.self)
        #expect(json == #"["01ARYZ6S41TSV4RRFFQ69G5FAV"]"#)
        #expect(try JSONDecoder().decode([ULID].self, from: Data(#"["01aryz6s41tsv4rrffq69g5fav"]"#.utf8)) == [id])
    }

    @Test(arguments: [#"["not-a-ulid"]"#, #"[""]"#, #"[42]"#])
    func decodingInvalidTextThrowsDecodingError(_ json: String) {
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([ULID].self, from: Data(json.utf8))
        }
    }

    @Test func dictionariesKeyedByULIDCodeAsObjects() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = String(decoding: try encoder.encode([ulid(7): 1]), as: UTF8.self)
        #expect(json == #"{"00000000000000000000000007":1}"#)
        #expect(try JSONDecoder().decode([ULID: Int].self, from: Data(json.utf8)) == [ulid(7): 1])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([ULID: Int].self, from: Data(#"{"nope":1}"#.utf8))
        }
    }

    @Test func losslessStringRoundTrip() {
        let id = ULID.generate()
        #expect(ULID(id.description) == id)
    }
}
