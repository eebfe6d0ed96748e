import Foundation
import FunctionRuntime
import HTTPTypes
import HummingbirdTesting
import Testing
import ThreadDomain

@Suite struct IdempotencyTests {
    let creator = ULID.generate()

    @Test func aRetryWithTheSameKeyAnswersTheSameBodyAndAppendsNothing() async throws {
        try await TestGateway.run { gateway in
            let thread = try await gateway.createThread(creator: creator)
            let body = json(["accountId": creator.rawValue, "messages": [["text": "once"], ["text": "twice?"]]])
            let headers: HTTPFields = [.contentType: "application/json", HTTPField.Name("Idempotency-Key")!: "add-1"]

            let first = try await gateway.post("/v1/threads/\(thread)/messages/add", body, headers: headers)
            let lengthAfterFirst = try await gateway.streamLength(of: thread)
            let retry = try await gateway.post("/v1/threads/\(thread)/messages/add", body, headers: headers)

            #expect(first.status == .ok && retry.status == .ok)
            #expect(retry.text == first.text)
            #expect(try first.answer().messageIds?.count == 2)
            #expect(try await gateway.streamLength(of: thread) == lengthAfterFirst)
        }
    }

    @Test func theBodyCommandIdWorksLikeTheHeader() async throws {
        try await TestGateway.run { gateway in
            let thread = try await gateway.createThread(creator: creator)
            let body = json(["accountId": creator.rawValue, "messages": [["text": "hi"]], "commandId": "cmd-42"])
            let first = try await gateway.post("/v1/threads/\(thread)/messages/add", body)
            let retry = try await gateway.post("/v1/threads/\(thread)/messages/add", body)
            #expect(retry.text == first.text)
            #expect(try await gateway.streamLength(of: thread) == 2)
        }
    }

    @Test func reusingAKeyForAnotherBodyIsRefused() async throws {
        try await TestGateway.run { gateway in
            let thread = try await gateway.createThread(creator: creator)
            let headers: HTTPFields = [.contentType: "application/json", HTTPField.Name("Idempotency-Key")!: "key-1"]
            _ = try await gateway.post(
                "/v1/threads/\(thread)/messages/add",
                json(["accountId": creator.rawValue, "messages": [["text": "first"]]]), headers: headers)
            let reused = try await gateway.post(
                "/v1/threads/\(thread)/messages/add",
                json(["accountId": creator.rawValue, "messages": [["text": "other"]]]), headers: headers)
            #expect(reused.status == .conflict)
            #expect(try reused.errorCode() == "idempotency_key_reused")
            #expect(try await gateway.streamLength(of: thread) == 2)
        }
    }

    @Test func aCreateRetriedWithoutThreadIdLandsOnTheSameThread() async throws {
        try await TestGateway.run { gateway in
            let body = json(["accountId": creator.rawValue, "title": "idempotent"])
            let headers: HTTPFields = [.contentType: "application/json", HTTPField.Name("Idempotency-Key")!: "create-1"]
            let first = try await gateway.post("/v1/threads/create", body, headers: headers)
            let retry = try await gateway.post("/v1/threads/create", body, headers: headers)
            #expect(first.status == .created && retry.status == .created)
            #expect(retry.text == first.text)
            let thread = try first.answer().threadId
            #expect(try await gateway.streamLength(of: thread) == 1)
            let streams = try await gateway.namespaceContents().keys.filter { $0.contains(":thread:") }
            #expect(streams.count == 1)

            let other = try await gateway.post("/v1/threads/create", json(["accountId": creator.rawValue, "title": "other"]), headers: headers)
            #expect(other.status == .conflict)
            #expect(try other.errorCode() == "idempotency_key_reused")
        }
    }

    @Test func twoAccountsMayPickTheSameKey() async throws {
        try await TestGateway.run { gateway in
            let member = ULID.generate()
            let created = try await gateway.post(
                "/v1/threads/create",
                json(["accountId": creator.rawValue, "title": "shared keys", "memberIds": [member.rawValue]]))
            let thread = try created.answer().threadId
            let headers: HTTPFields = [.contentType: "application/json", HTTPField.Name("Idempotency-Key")!: "1"]
            let mine = try await gateway.post(
                "/v1/threads/\(thread)/messages/add",
                json(["accountId": creator.rawValue, "messages": [["text": "mine"]]]), headers: headers)
            let theirs = try await gateway.post(
                "/v1/threads/\(thread)/messages/add",
                json(["accountId": member.rawValue, "messages": [["text": "theirs"]]]), headers: headers)
            #expect(mine.status == .ok && theirs.status == .ok)
            #expect(try mine.answer().messageIds != theirs.answer().messageIds)
            #expect(try await gateway.streamLength(of: thread) == 3)

            let first = try await gateway.post(
                "/v1/threads/create", json(["accountId": creator.rawValue, "title": "a"]), headers: headers)
            let second = try await gateway.post(
                "/v1/threads/create", json(["accountId": member.rawValue, "title": "b"]), headers: headers)
            #expect(first.status == .created && second.status == .created)
            #expect(try first.answer().threadId != second.answer().threadId)
        }
    }
}
