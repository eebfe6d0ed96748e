import Foundation
import EventStore
@testable import ReadModel
import RedisClient
import Testing
import ThreadDomain

@Suite("ThreadView JSON")
struct ThreadViewJSONTests {
    /// get-thread's answer is written by hand: the same bytes as its Codable
    /// conformance through the sorted-keys encoder every other answer goes through.
    @Test(arguments: [
        String(decoding: (0...0x7F).map { UInt8($0) }, as: UTF8.self), #"say "hi" \ to / them"#, "Ünïcödé 👍🏽", "",
    ])
    func handWrittenJSONIsTheEncodersBytes(_ text: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var fields = [
            "id": ULID.generate().rawValue, "creatorId": ULID.generate().rawValue, "title": text,
            "createdAt": "1700000000000", "updatedAt": "1700000000123", "version": "42",
            "administratorCount": "3", "memberCount": "10000", "messageCount": "0",
        ]
        let minimal = try #require(ThreadView(hashFields: fields))
        fields["parentThreadId"] = ULID.generate().rawValue
        fields["remarks"] = text + "\n"
        fields["destroyedAt"] = "1700000000999"
        let full = try #require(ThreadView(hashFields: fields))
        for view in [minimal, full] {
            #expect(view.canonicalJSON == Array(try encoder.encode(view)))
        }
    }

    /// A hash without one of the required fields, or with one unreadable, is no view;
    /// a field the reader does not know is passed over.
    @Test func aHashMissingOrBreakingARequiredFieldIsNoView() throws {
        let fields = [
            "id": ULID.generate().rawValue, "creatorId": ULID.generate().rawValue, "title": "t",
            "createdAt": "1700000000000", "updatedAt": "1700000000123", "version": "42", "memberCount": "2",
        ]
        let view = try #require(ThreadView(hashFields: fields))
        #expect(view.memberCount == 2 && view.administratorCount == 0 && view.remarks == nil)
        for name in ["id", "creatorId", "title", "createdAt", "updatedAt", "version"] {
            var missing = fields
            missing[name] = nil
            #expect(ThreadView(hashFields: missing) == nil, "without \(name)")
        }
        for name in ["id", "creatorId", "createdAt", "updatedAt", "version"] {
            var broken = fields
            broken[name] = "x"
            #expect(ThreadView(hashFields: broken) == nil, "\(name) unreadable")
        }
        var extended = fields
        extended["aFieldOfALaterVersion"] = "1"
        #expect(ThreadView(hashFields: extended) == view)
        #expect(ThreadView(hash: .null) == nil)
    }

    /// Numbers are written digit by digit: every sign and length gives the encoder's digits.
    @Test(arguments: [Int64.min, -1_234_567, -10, -1, 0, 7, 10, 99, 1_700_000_000_000, Int64.max])
    func integersAreTheEncodersDigits(_ value: Int64) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let view = try #require(ThreadView(hashFields: [
            "id": ULID.generate().rawValue, "creatorId": ULID.generate().rawValue, "title": "t",
            "createdAt": String(value), "updatedAt": String(value / 3), "version": String(value.magnitude / 2),
            "administratorCount": String(value % 1000), "memberCount": String(value), "messageCount": "1",
            "destroyedAt": String(value / -7),
        ]))
        #expect(view.canonicalJSON == Array(try encoder.encode(view)))
    }
}

extension ThreadView {
    /// The view of a hash holding `fields`, as `HGETALL` answers it.
    init?(hashFields fields: [String: String]) {
        self.init(hash: .array(fields.flatMap { [RedisValue.bulkString(Array($0.utf8)), .bulkString(Array($1.utf8))] }))
    }
}

@Suite("Read-model keys")
struct ReadModelKeysTests {
    /// `tw_rm_apply`'s keys are built from one stem: they must stay the keys the reader reads.
    @Test(arguments: [0, 3])
    func theApplysKeysAreTheViewsKeys(generation: Int) {
        var layout = KeyLayout(namespace: "tw", partitionCount: 64)
        layout.readModelGeneration = generation
        let threadId = ULID.generate()
        #expect(layout.readModelKeys(of: threadId) == [
            layout.threadView(threadId), layout.administratorsView(threadId), layout.membersView(threadId),
            layout.messagesView(threadId), layout.timelineView(threadId), layout.accountOutbox(threadId),
        ])
    }
}
