import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import ThreadDomain

/// DESIGN §3: query responses carry the read model's version as `ETag`, set at
/// the edge; `If-None-Match` with the current tag answers 304 with no body.
@Suite(.timeLimit(.minutes(2))) struct QueryETagTests {
    let creator = ULID.generate()
    let member = ULID.generate()

    @Test func everyThreadQueryCarriesTheReadModelVersionAsItsETag() async throws {
        try await TestGateway.run(readSide: .worker) { gateway in
            let thread = try await gateway.createThread(creator: creator, members: [member])
            let version = try await gateway.addMessage("hello", by: creator, to: thread).answer().version
            #expect(version == 2)

            for path in Self.threadQueries(thread) {
                // minVersion: read-your-writes, so the worker has projected version 2 when this answers.
                let response = try await gateway.get("\(path)?accountId=\(member)&minVersion=\(version)")
                #expect(response.status == .ok, "\(path): \(response.text)")
                #expect(response.headers[.eTag] == #""2""#, "\(path)")
            }
            let byName = try await gateway.post(
                "/function/list-messages", json(["threadId": thread.rawValue, "accountId": member.rawValue]))
            #expect(byName.headers[.eTag] == #""2""#)
        }
    }

    @Test func theCurrentTagAnswers304WithNoBodyAndAStaleTagTheNewVersion() async throws {
        try await TestGateway.run(readSide: .worker) { gateway in
            let thread = try await gateway.createThread(creator: creator, members: [member])
            _ = try await gateway.addMessage("one", by: creator, to: thread)

            for path in Self.threadQueries(thread) {
                let uri = "\(path)?accountId=\(member)&minVersion=2"
                let notModified = try await gateway.get(uri, headers: [.ifNoneMatch: #""2""#])
                #expect(notModified.status == .notModified, "\(path)")
                #expect(notModified.body.readableBytes == 0, "\(path)")
                #expect(notModified.headers[.eTag] == #""2""#, "\(path)")
                // A list of tags, and a weak tag, match too.
                #expect(try await gateway.get(uri, headers: [.ifNoneMatch: #""1", W/"2""#]).status == .notModified)
            }

            let version = try await gateway.addMessage("two", by: creator, to: thread).answer().version
            let changed = try await gateway.get(
                "/v1/threads/\(thread)/messages?accountId=\(member)&minVersion=\(version)", headers: [.ifNoneMatch: #""2""#])
            #expect(changed.status == .ok)
            #expect(changed.headers[.eTag] == "\"\(version)\"")
            #expect(changed.text.contains("two"))
        }
    }

    @Test func listThreadsHasNoSingleVersionSoNoETag() async throws {
        try await TestGateway.run(readSide: .worker) { gateway in
            let thread = try await gateway.createThread(creator: creator, members: [member])
            _ = try await gateway.get("/v1/threads/\(thread)?accountId=\(member)&minVersion=1")
            let listed = try await gateway.get("/v1/threads?accountId=\(member)")
            #expect(listed.status == .ok)
            #expect(listed.headers[.eTag] == nil)
            // Errors carry no tag either.
            let refused = try await gateway.get("/v1/threads/\(thread)?accountId=\(ULID.generate())")
            #expect(refused.status == .forbidden)
            #expect(refused.headers[.eTag] == nil)
        }
    }

    /// get-thread, list-administrators, list-members, list-messages.
    private static func threadQueries(_ thread: ThreadID) -> [String] {
        let base = "/v1/threads/\(thread)"
        return [base, "\(base)/administrator-ids", "\(base)/member-ids", "\(base)/messages"]
    }
}
