import Foundation
import ReadModel
import Testing
import ThreadDomain
@testable import ThreadFunctions

/// The opaque cursors of list-threads and list-messages: what one encodes,
/// the other decodes; anything else is 400 `invalid_request`.
@Suite struct PageCursorTests {
    let thread = ThreadID("01J0000000000000000000THRD")!

    @Test func aThreadListCursorRoundTripsAndIsURLSafe() throws {
        let cursor = ThreadListCursor(
            instant: 1_795_780_990_641, position: ThreadListPosition(lastActivityAt: 1_795_780_989_813, threadId: thread))
        let text = cursor.encoded
        #expect(text.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        #expect(!text.contains(thread.rawValue), "opaque: the thread id is not readable in it")
        #expect(try ThreadListCursor(decoding: text) == cursor)
        // A thread created after the instant is placed by its creation, after the instant.
        let createdLater = ThreadListCursor(
            instant: 1_795_780_990_641, position: ThreadListPosition(lastActivityAt: 1_795_780_990_900, threadId: thread))
        #expect(try ThreadListCursor(decoding: createdLater.encoded) == createdLater)
    }

    @Test func aMessageListCursorRoundTrips() throws {
        for position in [Int64(0), 1_000, 9_223_372_036_854] {
            let cursor = MessageListCursor(position: position)
            #expect(try MessageListCursor(decoding: cursor.encoded) == cursor)
        }
    }

    @Test(arguments: [
        "", "not a cursor", "dDEuMS4yLjM", "dDEuMS4yLjM=", "t1.1.1.01J0000000000000000000THRD",
        OpaqueCursor.encode(kind: "t1", ["9", "-5", "01J0000000000000000000THRD"]),
        OpaqueCursor.encode(kind: "t1", ["-1", "-1", "01J0000000000000000000THRD"]),
        OpaqueCursor.encode(kind: "t1", ["9", "5", "01J0000000000000000000THRD", "extra"]),
        OpaqueCursor.encode(kind: "m1", ["5"]),
        String(repeating: "A", count: 400),
    ])
    func aThreadListCursorItDidNotGiveOutIsRefused(_ text: String) {
        #expect(throws: FunctionError.self) { try ThreadListCursor(decoding: text) }
        do {
            _ = try ThreadListCursor(decoding: text)
        } catch {
            #expect(error.code == .invalidRequest)
        }
    }

    @Test(arguments: [
        "", "bTE", OpaqueCursor.encode(kind: "m1", ["-4"]), OpaqueCursor.encode(kind: "m1", ["x"]),
        OpaqueCursor.encode(kind: "t1", ["9", "5", "01J0000000000000000000THRD"]),
    ])
    func aMessageListCursorItDidNotGiveOutIsRefused(_ text: String) {
        #expect(throws: FunctionError.self) { try MessageListCursor(decoding: text) }
    }

    @Test func encodingLeavesNoPaddingAndDecodesEveryLength() {
        for length in 1...6 {
            let field = String(repeating: "7", count: length)
            let text = OpaqueCursor.encode(kind: "k", [field])
            #expect(!text.contains("="))
            #expect(OpaqueCursor.decode(text, kind: "k", count: 1) == [field])
        }
    }
}
