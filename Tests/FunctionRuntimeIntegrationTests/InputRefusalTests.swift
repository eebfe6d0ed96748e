import Foundation
import FunctionRuntime
import HTTPTypes
import HummingbirdTesting
import Testing
import ThreadDomain

/// Bad input is refused with the error shape, and nothing reaches Redis.
@Suite struct InputRefusalTests {
    struct BadRequest: Sendable, CustomTestStringConvertible {
        var label: String
        var uri: @Sendable (ThreadID) -> String = { "/v1/threads/\($0)/messages/add" }
        var body: @Sendable (AccountID) -> String
        var contentType = "application/json"
        var headers: [String: String] = [:]
        var status: HTTPResponse.Status
        var code: String
        var testDescription: String { label }
    }

    static let cases: [BadRequest] = [
        BadRequest(label: "malformed JSON", body: { _ in #"{"accountId": "# }, status: .badRequest, code: "invalid_request"),
        BadRequest(label: "body not an object", body: { _ in "[1,2]" }, status: .badRequest, code: "invalid_request"),
        BadRequest(
            label: "wrong JSON type", body: { json(["accountId": $0.rawValue, "messages": [["text": 42]]]) },
            status: .badRequest, code: "invalid_request"),
        BadRequest(
            label: "messages not an array", body: { json(["accountId": $0.rawValue, "messages": "hello"]) },
            status: .badRequest, code: "invalid_request"),
        BadRequest(
            label: "missing accountId", body: { _ in json(["messages": [["text": "hi"]]]) },
            status: .badRequest, code: "invalid_request"),
        BadRequest(
            label: "invalid ULID in the body", body: { _ in json(["accountId": "not-a-ulid", "messages": [["text": "hi"]]]) },
            status: .badRequest, code: "invalid_request"),
        BadRequest(
            label: "invalid ULID in the path", uri: { _ in "/v1/threads/ILLEGAL/messages/add" },
            body: { json(["accountId": $0.rawValue, "messages": [["text": "hi"]]]) }, status: .badRequest, code: "invalid_request"),
        BadRequest(
            label: "invalid mention", body: { json(["accountId": $0.rawValue, "messages": [["text": "hi", "mentions": ["x"]]]]) },
            status: .badRequest, code: "invalid_request"),
        BadRequest(
            label: "empty text", body: { json(["accountId": $0.rawValue, "messages": [["text": "   "]]]) },
            status: .badRequest, code: "invalid_request"),
        BadRequest(
            label: "4001-character text",
            body: { json(["accountId": $0.rawValue, "messages": [["text": String(repeating: "x", count: 4001)]]]) },
            status: .badRequest, code: "invalid_request"),
        BadRequest(
            label: "101 messages",
            body: { json(["accountId": $0.rawValue, "messages": Array(repeating: ["text": "hi"], count: 101)]) },
            status: .badRequest, code: "invalid_request"),
        BadRequest(
            label: "no messages", body: { json(["accountId": $0.rawValue, "messages": [] as [Any]]) },
            status: .badRequest, code: "invalid_request"),
        BadRequest(
            label: "deeply nested JSON", body: { _ in String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) },
            status: .badRequest, code: "invalid_request"),
        BadRequest(
            label: "body of 2 MiB",
            body: { json(["accountId": $0.rawValue, "messages": [["text": String(repeating: "x", count: 2 << 20)]]]) },
            status: .contentTooLarge, code: "payload_too_large"),
        BadRequest(
            label: "form content type", body: { "accountId=\($0)" }, contentType: "application/x-www-form-urlencoded",
            status: .unsupportedMediaType, code: "unsupported_media_type"),
        BadRequest(
            label: "text content type", body: { json(["accountId": $0.rawValue, "messages": [["text": "hi"]]]) },
            contentType: "text/plain", status: .unsupportedMediaType, code: "unsupported_media_type"),
        BadRequest(
            label: "invalid idempotency key", body: { json(["accountId": $0.rawValue, "messages": [["text": "hi"]]]) },
            headers: ["Idempotency-Key": "has spaces"], status: .badRequest, code: "invalid_request"),
        BadRequest(
            label: "over-long commandId",
            body: { json(["accountId": $0.rawValue, "messages": [["text": "hi"]], "commandId": String(repeating: "k", count: 129)]) },
            status: .badRequest, code: "invalid_request"),
        BadRequest(
            label: "threadId in the body differs from the path",
            body: { json(["accountId": $0.rawValue, "threadId": ULID.generate().rawValue, "messages": [["text": "hi"]]]) },
            status: .badRequest, code: "invalid_request"),
        BadRequest(
            label: "unknown function", uri: { _ in "/function/no-such-function" },
            body: { json(["accountId": $0.rawValue]) }, status: .notFound, code: "not_found"),
        BadRequest(
            label: "unknown route", uri: { _ in "/v1/nothing/here" },
            body: { json(["accountId": $0.rawValue]) }, status: .notFound, code: "not_found"),
        BadRequest(
            label: "create with a 256-character title", uri: { _ in "/v1/threads/create" },
            body: { json(["accountId": $0.rawValue, "title": String(repeating: "t", count: 256)]) },
            status: .badRequest, code: "invalid_request"),
        BadRequest(
            label: "create with a one-Character title of 600,001 bytes", uri: { _ in "/v1/threads/create" },
            body: { json(["accountId": $0.rawValue, "title": "a" + String(repeating: "\u{0301}", count: 300_000)]) },
            status: .badRequest, code: "invalid_request"),
        BadRequest(
            label: "create with remarks of 4097 bytes", uri: { _ in "/v1/threads/create" },
            body: { json(["accountId": $0.rawValue, "title": "t", "remarks": "r" + String(repeating: "\u{0301}", count: 2048)]) },
            status: .badRequest, code: "invalid_request"),
        BadRequest(
            label: "one-Character text of 16,385 bytes",
            body: { json(["accountId": $0.rawValue, "messages": [["text": "a" + String(repeating: "\u{0301}", count: 8192)]]]) },
            status: .badRequest, code: "invalid_request"),
        BadRequest(
            label: "join without ids", uri: { "/v1/threads/\($0)/member-ids/join" },
            body: { json(["accountId": $0.rawValue, "accountIds": [] as [Any]]) }, status: .badRequest, code: "invalid_request"),
    ]

    @Test(arguments: cases)
    func badInputIsRefusedAndWritesNothing(_ bad: BadRequest) async throws {
        try await TestGateway.run { gateway in
            let creator = ULID.generate()
            let thread = try await gateway.createThread(creator: creator)
            let before = try await gateway.namespaceContents()
            var headers: HTTPFields = [.contentType: bad.contentType]
            for (name, value) in bad.headers { headers[HTTPField.Name(name)!] = value }

            let response = try await gateway.post(bad.uri(thread), bad.body(creator), headers: headers)

            #expect(response.status == bad.status, "\(response.text)")
            #expect(try response.errorCode() == bad.code)
            #expect(response.headers[.contentType] == "application/json")
            #expect(try await gateway.namespaceContents() == before)
        }
    }

    /// A form post carries no `Content-Type: application/json` and a browser
    /// sends it cross-site unasked: it must never run a command, and a query
    /// string must never stand in for a command's body.
    @Test func aPostNeedsAJSONBodyAndIgnoresTheQueryString() async throws {
        try await TestGateway.run { gateway in
            let creator = ULID.generate()
            let thread = try await gateway.createThread(creator: creator)
            let before = try await gateway.namespaceContents()
            let destroy = "/v1/threads/\(thread)/destroy?accountId=\(creator)"
            for contentType in ["text/plain", "application/x-www-form-urlencoded", nil] {
                var headers: HTTPFields = [.contentLength: "0"]
                if let contentType { headers[.contentType] = contentType }
                let response = try await gateway.post(destroy, "", headers: headers)
                #expect(response.status == .unsupportedMediaType, "\(contentType ?? "no content type"): \(response.text)")
                #expect(try response.errorCode() == "unsupported_media_type")
            }
            let queryOnly = try await gateway.post(destroy, "{}")
            #expect(queryOnly.status == .badRequest, "\(queryOnly.text)")
            #expect(try queryOnly.errorCode() == "invalid_request")
            #expect(try await gateway.namespaceContents() == before)

            let fromTheBody = try await gateway.post("/v1/threads/\(thread)/destroy", json(["accountId": creator.rawValue]))
            #expect(fromTheBody.status == .ok, "\(fromTheBody.text)")
        }
    }

    @Test func invalidInputNamesTheField() async throws {
        try await TestGateway.run { gateway in
            let response = try await gateway.post(
                "/v1/threads/\(ULID.generate())/messages/add",
                json(["accountId": ULID.generate().rawValue, "messages": [["text": "ok"], ["text": 7]]]))
            let body = try JSONDecoder().decode(ErrorBody.self, from: Data(response.text.utf8))
            #expect(body.error.message.contains("messages[1].text"))
        }
    }

    @Test func refusalsBeforeAnyRedisCallLeaveTheNamespaceEmpty() async throws {
        try await TestGateway.run { gateway in
            _ = try await gateway.post("/v1/threads/create", json(["accountId": "nope", "title": "t"]))
            _ = try await gateway.post("/v1/threads/create", #"{"accountId":"#)
            #expect(try await gateway.namespaceContents().isEmpty)
        }
    }
}
