import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import ThreadDomain

/// list-members and list-administrators answer bounded pages in join order,
/// chained by an opaque `nextCursor`.
@Suite(.timeLimit(.minutes(2))) struct ParticipantPagingTests {
    struct Page: Decodable {
        struct Participant: Decodable { var accountId: AccountID }
        var members: [Participant]
        var nextCursor: String?
    }

    @Test func membersComeInPagesThatNeitherSkipNorRepeat() async throws {
        try await TestGateway.run(readSide: .worker) { gateway in
            let creator = ULID.generate()
            let members = (0..<5).map { _ in ULID.generate() }
            let thread = try await gateway.createThread(creator: creator, members: members)

            var listed: [AccountID] = []
            var cursor: String?
            var pages = 0
            repeat {
                let query = "accountId=\(creator)&minVersion=1&limit=2" + (cursor.map { "&cursor=\($0)" } ?? "")
                let response = try await gateway.get("/v1/threads/\(thread)/member-ids?\(query)")
                #expect(response.status == .ok, "\(response.text)")
                let page = try JSONDecoder().decode(Page.self, from: Data(buffer: response.body))
                #expect(page.members.count <= 2)
                listed += page.members.map(\.accountId)
                cursor = page.nextCursor
                pages += 1
            } while cursor != nil && pages < 10
            #expect(pages == 3)
            // All joined with the create, at one instant: ties go by account id.
            #expect(listed == members.sorted { $0.rawValue < $1.rawValue })

            let everyone = try await gateway.get("/v1/threads/\(thread)/member-ids?accountId=\(creator)&minVersion=1")
            let whole = try JSONDecoder().decode(Page.self, from: Data(buffer: everyone.body))
            #expect(whole.members.map(\.accountId) == listed)
            #expect(whole.nextCursor == nil)
        }
    }

    @Test(arguments: ["nonsense", "12.not-a-ulid", "1.2.3", ""])
    func aCursorThisListDidNotGiveOutIsInvalid(_ cursor: String) async throws {
        try await TestGateway.run(readSide: .worker) { gateway in
            let creator = ULID.generate()
            let thread = try await gateway.createThread(creator: creator)
            let response = try await gateway.get("/v1/threads/\(thread)/administrator-ids?accountId=\(creator)&minVersion=1&cursor=\(cursor)")
            #expect(response.status == .badRequest, "\(response.text)")
            #expect(try response.errorCode() == "invalid_request")
        }
    }
}
