import Foundation
import FunctionRuntime
import HTTPTypes
import HummingbirdTesting
import Testing
import ThreadDomain

/// Every command route through the real application and a real Redis.
@Suite struct CommandRouteTests {
    let creator = ULID.generate()
    let administrator = ULID.generate()
    let member = ULID.generate()
    let stranger = ULID.generate()

    @Test func everyCommandRouteAnswersThreadIdAndVersion() async throws {
        try await TestGateway.run { gateway in
            let created = try await gateway.post(
                "/v1/threads/create", json(["accountId": creator.rawValue, "title": "Launch plan", "remarks": "Q3"]))
            #expect(created.status == .created)
            let thread = try created.answer().threadId
            #expect(try created.answer() == Answer(threadId: thread, version: 1, messageIds: nil))

            let joinedAdministrators = try await gateway.post(
                "/v1/threads/\(thread)/administrator-ids/join",
                json(["accountId": creator.rawValue, "accountIds": [administrator.rawValue]]))
            #expect(joinedAdministrators.status == .ok)
            #expect(try joinedAdministrators.answer() == Answer(threadId: thread, version: 2))

            let joinedMembers = try await gateway.post(
                "/v1/threads/\(thread)/member-ids/join",
                json(["accountId": administrator.rawValue, "accountIds": [member.rawValue]]))
            #expect(try joinedMembers.answer() == Answer(threadId: thread, version: 3))

            let added = try await gateway.post(
                "/v1/threads/\(thread)/messages/add",
                json(["accountId": member.rawValue, "messages": [["text": "hello"], ["text": "world", "mentions": [creator.rawValue]]]]))
            #expect(added.status == .ok)
            let addedAnswer = try added.answer()
            #expect(addedAnswer.version == 4 && addedAnswer.threadId == thread)
            let messageIds = try #require(addedAnswer.messageIds)
            #expect(messageIds.count == 2 && messageIds[0] < messageIds[1])

            let removed = try await gateway.post(
                "/v1/threads/\(thread)/messages/remove",
                json(["accountId": member.rawValue, "messageIds": [messageIds[0].rawValue]]))
            #expect(try removed.answer() == Answer(threadId: thread, version: 5, messageIds: [messageIds[0]]))

            let leftMembers = try await gateway.post(
                "/v1/threads/\(thread)/member-ids/leave",
                json(["accountId": member.rawValue, "accountIds": [member.rawValue]]))
            #expect(try leftMembers.answer() == Answer(threadId: thread, version: 6))

            let leftAdministrators = try await gateway.post(
                "/v1/threads/\(thread)/administrator-ids/leave",
                json(["accountId": creator.rawValue, "accountIds": [administrator.rawValue]]))
            #expect(try leftAdministrators.answer() == Answer(threadId: thread, version: 7))

            let destroyed = try await gateway.post(
                "/v1/threads/\(thread)/destroy", json(["accountId": creator.rawValue]))
            #expect(try destroyed.answer() == Answer(threadId: thread, version: 8))
            #expect(try await gateway.streamLength(of: thread) == 8)
        }
    }

    @Test func joiningIdsAlreadyPresentAnswersTheUnchangedVersion() async throws {
        try await TestGateway.run { gateway in
            let thread = try await gateway.createThread(creator: creator, members: [member])
            let response = try await gateway.post(
                "/v1/threads/\(thread)/member-ids/join", json(["accountId": creator.rawValue, "accountIds": [member.rawValue]]))
            #expect(response.status == .ok)
            #expect(try response.answer() == Answer(threadId: thread, version: 1))
        }
    }

    @Test func clientChosenIdsAreKept() async throws {
        try await TestGateway.run { gateway in
            let thread = ULID.generate()
            let message = ULID.generate()
            let created = try await gateway.post(
                "/v1/threads/create", json(["accountId": creator.rawValue, "title": "t", "threadId": thread.rawValue.lowercased()]))
            #expect(try created.answer().threadId == thread)
            let added = try await gateway.post(
                "/v1/threads/\(thread)/messages/add",
                json(["accountId": creator.rawValue, "messages": [["id": message.rawValue, "text": "hi"]]]))
            #expect(try added.answer().messageIds == [message])
        }
    }

    @Test func domainRefusalsGetTheirStatusAndCode() async throws {
        try await TestGateway.run { gateway in
            let thread = try await gateway.createThread(creator: creator, members: [member])
            let message = try await gateway.addMessage("mine", by: creator, to: thread).answer().messageIds![0]

            let cases: [(String, String, HTTPResponse.Status, String)] = [
                ("/v1/threads/\(thread)/messages/add",
                 json(["accountId": stranger.rawValue, "messages": [["text": "hi"]]]), .forbidden, "not_participant"),
                ("/v1/threads/\(thread)/member-ids/join",
                 json(["accountId": member.rawValue, "accountIds": [stranger.rawValue]]), .forbidden, "not_administrator"),
                ("/v1/threads/\(thread)/messages/remove",
                 json(["accountId": member.rawValue, "messageIds": [message.rawValue]]), .forbidden, "not_sender"),
                ("/v1/threads/\(ULID.generate())/messages/add",
                 json(["accountId": creator.rawValue, "messages": [["text": "hi"]]]), .notFound, "thread_not_found"),
                ("/v1/threads/\(thread)/messages/add",
                 json(["accountId": creator.rawValue, "messages": [["text": "hi", "replyTo": ULID.generate().rawValue]]]),
                 .notFound, "message_not_found"),
                ("/v1/threads/\(thread)/messages/add",
                 json(["accountId": creator.rawValue, "messages": [["text": "again", "id": message.rawValue]]]),
                 .conflict, "message_exists"),
                ("/v1/threads/\(thread)/administrator-ids/leave",
                 json(["accountId": creator.rawValue, "accountIds": [creator.rawValue]]), .conflict, "last_administrator"),
                ("/v1/threads/create",
                 json(["accountId": creator.rawValue, "title": "again", "threadId": thread.rawValue]), .conflict, "thread_exists"),
            ]
            for (uri, body, status, code) in cases {
                let before = try await gateway.streamLength(of: thread)
                let response = try await gateway.post(uri, body)
                #expect(response.status == status, "\(uri) \(body): \(response.text)")
                #expect(try response.errorCode() == code, "\(uri) \(body)")
                #expect(try await gateway.streamLength(of: thread) == before)
            }
        }
    }

    @Test func aDestroyedThreadAnswersGone() async throws {
        try await TestGateway.run { gateway in
            let thread = try await gateway.createThread(creator: creator, members: [member])
            #expect(try await gateway.post("/v1/threads/\(thread)/destroy", json(["accountId": creator.rawValue])).status == .ok)
            let response = try await gateway.addMessage("too late", by: member, to: thread)
            #expect(response.status == .gone)
            #expect(try response.errorCode() == "thread_destroyed")
        }
    }
}
