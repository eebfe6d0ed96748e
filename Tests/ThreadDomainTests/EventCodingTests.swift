import Foundation
import Testing
import ThreadDomain

@Suite struct EventCodingTests {
    static let everyEvent: [ThreadEvent] = [
        threadCreated,
        .threadCreated(ThreadCreated(
            threadId: threadId, creatorId: alice, parentThreadId: ulid(99), title: "Ünïcödé \"quoted\" / 👍🏽",
            remarks: "line\nbreak", administratorIds: [alice], memberIds: []
        )),
        .threadDestroyed,
        .administratorIdsJoined([dave, erin]),
        .administratorIdsLeft([bob]),
        .memberIdsJoined([dave]),
        .memberIdsLeft([carol, dave]),
        .messagesAdded([
            AddedMessage(id: message1, senderId: bob, text: "hello"),
            AddedMessage(id: message2, senderId: carol, text: "re: \\ \u{0001}", replyTo: message1, mentions: [bob, alice]),
        ]),
        .messagesRemoved([message1, message2]),
    ]

    @Test(arguments: everyEvent)
    func roundTripsThroughTheWireFormat(_ event: ThreadEvent) throws {
        let data = event.encodedData()
        #expect(try ThreadEvent.decode(type: event.typeName, data: data) == event)
        #expect(try ThreadEvent.decode(type: event.typeName, data: Array(data.utf8)) == event)
        #expect(!data.contains("\n"), "compact JSON: \(data)")
    }

    /// Every byte 0x00–0x7F, quotes, backslashes, slashes and characters beyond ASCII.
    static let awkwardTexts: [String] = [
        String(decoding: (0...0x7F).map { UInt8($0) }, as: UTF8.self),
        #"a "quoted" \\ back\slash / slash"#, "Ünïcödé 👍🏽 \u{2028}\u{2029}", "", " ",
    ]

    /// `encodedData` writes by hand what the Codable types give through a sorted-keys JSONEncoder.
    @Test(arguments: awkwardTexts)
    func handWrittenDataIsTheEncodersBytes(_ text: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        func encoded(_ value: some Encodable) throws -> String { String(decoding: try encoder.encode(value), as: UTF8.self) }

        let messages = [
            AddedMessage(id: message1, senderId: bob, text: text),
            AddedMessage(id: message2, senderId: carol, text: text + "x", replyTo: message1, mentions: [bob, alice]),
        ]
        #expect(ThreadEvent.messagesAdded(messages).encodedData() == (try encoded(["messages": messages])))
        for created in [
            ThreadCreated(threadId: threadId, creatorId: alice, title: text, administratorIds: [alice], memberIds: []),
            ThreadCreated(
                threadId: threadId, creatorId: alice, parentThreadId: ulid(99), title: "t", remarks: text,
                administratorIds: [alice, bob], memberIds: [carol]),
        ] {
            #expect(ThreadEvent.threadCreated(created).encodedData() == (try encoded(created)))
        }
        #expect(ThreadEvent.memberIdsLeft([carol, dave]).encodedData() == (try encoded(["accountIds": [carol, dave]])))
        #expect(ThreadEvent.messagesRemoved([message1]).encodedData() == (try encoded(["messageIds": [message1]])))
        #expect(ThreadEvent.threadDestroyed.encodedData() == (try encoded([String: String]())))
    }

    @Test func typeNamesAreTheAkkaEventNames() {
        #expect(Self.everyEvent.map(\.typeName) == [
            "ThreadCreated", "ThreadCreated", "ThreadDestroyed", "AdministratorIdsJoined", "AdministratorIdsLeft",
            "MemberIdsJoined", "MemberIdsLeft", "MessagesAdded", "MessagesRemoved",
        ])
    }

    @Test func pinsTheWireFormat() {
        #expect(threadCreated.encodedData() == #"{"administratorIds":["00000000000000000000000001","00000000000000000000000002"],"creatorId":"00000000000000000000000001","memberIds":["00000000000000000000000003"],"threadId":"00000000000000000000000100","title":"Launch plan"}"#)
        #expect(ThreadEvent.threadDestroyed.encodedData() == "{}")
        #expect(ThreadEvent.memberIdsJoined([dave]).encodedData() == #"{"accountIds":["00000000000000000000000004"]}"#)
        #expect(ThreadEvent.messagesRemoved([message1]).encodedData() == #"{"messageIds":["00000000000000000000001001"]}"#)
        #expect(
            ThreadEvent.messagesAdded([
                AddedMessage(id: message1, senderId: bob, text: "a/b"),
                AddedMessage(id: message2, senderId: carol, text: "ok", replyTo: message1, mentions: [bob]),
            ]).encodedData()
                == #"{"messages":[{"id":"00000000000000000000001001","mentions":[],"senderId":"00000000000000000000000002","text":"a/b"},{"id":"00000000000000000000001002","mentions":["00000000000000000000000002"],"replyTo":"00000000000000000000001001","senderId":"00000000000000000000000003","text":"ok"}]}"#
        )
    }

    @Test func decodingIgnoresUnknownFieldsAndReadsLowercaseIds() throws {
        let data = #"{"accountIds":["0000000000000000000000000a"],"reason":"later field","nested":{"x":[1]}}"#
        #expect(try ThreadEvent.decode(type: "MemberIdsJoined", data: data) == .memberIdsJoined([ULID("0000000000000000000000000A")!]))
        #expect(try ThreadEvent.decode(type: "ThreadDestroyed", data: #"{"why":"done"}"#) == .threadDestroyed)
    }

    @Test func missingOptionalFieldsAreAbsent() throws {
        let data = #"{"messages":[{"id":"00000000000000000000001001","senderId":"00000000000000000000000002","text":"hi","mentions":[]}]}"#
        #expect(try ThreadEvent.decode(type: "MessagesAdded", data: data) == .messagesAdded([AddedMessage(id: message1, senderId: bob, text: "hi")]))
    }

    @Test(arguments: [
        ("ThreadCreated", #"{"threadId":"00000000000000000000000100"}"#, "creatorId"),
        ("MessagesAdded", #"{"messages":[{"id":"00000000000000000000001001","text":"hi","mentions":[]}]}"#, "senderId"),
        ("MemberIdsLeft", #"{"accountIds":["not-a-ulid"]}"#, "accountIds"),
        ("MessagesRemoved", #"{"messageIds":"00000000000000000000001001"}"#, "messageIds"),
        ("ThreadDestroyed", "[]", "top level"),
        ("AdministratorIdsJoined", "{", "JSON"),
        ("AdministratorIdsJoined", "", "JSON"),
    ])
    func unreadableDataIsAnInvalidRequestNamingTheField(type: String, data: String, field: String) {
        do {
            let event = try ThreadEvent.decode(type: type, data: data)
            Issue.record("decoded \(event)")
        } catch {
            #expect(error.code == .invalidRequest)
            #expect(error.message.contains(type) && error.message.contains(field), "\(error.message)")
        }
    }

    @Test func anUnknownTypeIsAnInvalidRequest() {
        #expect(throws: DomainError(.invalidRequest, "unknown event type 'ThreadRenamed'")) {
            try ThreadEvent.decode(type: "ThreadRenamed", data: "{}")
        }
    }
}
