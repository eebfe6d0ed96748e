import Foundation
import Testing
import ThreadDomain
@testable import ThreadFunctions

/// An invocation decodes straight into the handler's input, once: the body's
/// fields with the route's parameters laid over its top level.
@Suite struct InvocationTests {
    let thread = ThreadID("01J0000000000000000000THRD")!
    let account = AccountID("01J00000000000000000000ACC")!

    private func decode<Input: Decodable>(_ body: String, _ parameters: [String: String] = [:]) throws(FunctionError) -> Input {
        try InvocationCoding.decode(Invocation(body: Data(body.utf8), parameters: parameters))
    }

    @Test func pathParametersJoinTheBody() throws {
        let input: AddMessagesInput = try decode(
            #"{"accountId":"\#(account)","messages":[{"text":"hi"}]}"#, ["threadId": thread.rawValue])
        #expect(input.threadId == thread && input.accountId == account)
        #expect(input.messages.map(\.text) == ["hi"])
    }

    @Test func aQueryTakesEverythingFromParametersAndNumbersFromText() throws {
        let input: ListMessagesInput = try decode(
            "", ["threadId": thread.rawValue, "accountId": account.rawValue, "limit": "20", "minVersion": "3", "ignored": "x"])
        #expect(input.limit?.value == 20 && input.minVersion?.value == 3)
    }

    /// A query decodes from its parameters alone (no JSON): what is missing or
    /// wrong is refused in the same words as in a body.
    @Test(arguments: [
        (["threadId": "01J0000000000000000000THRD"], "accountId is required"),
        (["threadId": "01J0000000000000000000THRD", "accountId": "nope"], "accountId is not a ULID (26 Crockford base32 characters)"),
        (["threadId": "01J0000000000000000000THRD", "accountId": "01J00000000000000000000ACC", "limit": "ten"], "limit is invalid"),
    ])
    func aQueryWithoutBodyIsRefusedNamingTheParameter(parameters: [String: String], message: String) {
        do {
            let _: ListMessagesInput = try decode("", parameters)
            Issue.record("decoded \(parameters)")
        } catch {
            #expect(error.code == .invalidRequest)
            #expect(error.message == message)
        }
    }

    /// Every command's answer is written by hand: the bytes of its Codable conformance through the sorted-keys encoder.
    @Test func aCommandAnswerIsTheEncodersBytes() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for answer in [
            CommandAnswer(threadId: thread, version: 7),
            CommandAnswer(threadId: thread, version: 1_700_000, messageIds: [.generate(), .generate()]),
            CommandAnswer(threadId: thread, version: 0, messageIds: []),
        ] {
            #expect(answer.canonicalJSON == Array(try encoder.encode(answer)))
        }
    }

    @Test func aBodyFieldThatContradictsTheURLIsRefused() {
        #expect(throws: FunctionError.self) {
            let _: AddMessagesInput = try decode(
                #"{"threadId":"01J0000000000000000000OTHR","accountId":"\#(account)","messages":[{"text":"hi"}]}"#,
                ["threadId": thread.rawValue])
        }
        do {
            let _: AddMessagesInput = try decode(
                #"{"threadId":"01J0000000000000000000OTHR","accountId":"\#(account)","messages":[]}"#, ["threadId": thread.rawValue])
        } catch {
            #expect(error.message == "threadId in the body differs from the one in the URL")
        }
    }

    @Test(arguments: [
        ("{not json", "the body is not valid JSON"),
        ("[1,2]", "the body must be an object"),
        (#"{"accountId":"x","messages":[]}"#, "accountId is not a ULID (26 Crockford base32 characters)"),
    ])
    func refusalsNameTheProblem(body: String, message: String) {
        do {
            let _: AddMessagesInput = try decode(body, ["threadId": thread.rawValue])
            Issue.record("\(body) was accepted")
        } catch {
            #expect(error.code == .invalidRequest)
            #expect(error.message == message)
        }
    }

    @Test func aParameterThatIsNotANumberWhereOneIsExpectedIsRefused() {
        #expect(throws: FunctionError.self) {
            let _: ListMessagesInput = try decode("", ["threadId": thread.rawValue, "accountId": account.rawValue, "limit": "many"])
        }
    }
}
