import AuthTestSupport
import Foundation
import FunctionRuntime
import HTTPTypes
import HummingbirdTesting
import JWTKit
import Testing
import ThreadDomain
import ThreadFunctions

/// Under jwt authentication every route refuses every bad token with 401
/// (or 403 for a token of another account) and writes nothing; a good token
/// works end to end, with `accountId` left out, watch included.
@Suite struct AuthenticationTests {
    static let issuer = "https://id.threadweave.test"
    static let audience = "threadweave"
    let creator = AccountID.generate()
    let member = AccountID.generate()

    static func hs256Verifier() async throws -> Authentication {
        .jwt(try await TokenVerifier.make(TokenSettings(sharedSecret: TestKeys.sharedSecret, issuer: issuer, audience: audience)))
    }

    static func rs256Verifier() async throws -> Authentication {
        let key = try Insecure.RSA.PrivateKey(pem: TestKeys.rsaPrivatePEM)
        return .jwt(try await TokenVerifier.make(TokenSettings(jwks: try TestKeys.jwks(rsa: key.publicKey, kid: "rsa-1"))))
    }

    static func token(for account: AccountID) async throws -> String {
        try await TestTokens.hs256(TestTokens.claims(sub: account.rawValue, issuer: issuer, audience: [audience]))
    }

    /// One request per route of the registry (and the gateway's invocation route).
    struct RouteRequest: CustomStringConvertible {
        var method: HTTPRequest.Method
        var path: String
        var body: [String: Any]?
        var description: String { "\(method) \(path)" }
    }

    func requests(thread: ThreadID, message: MessageID) -> [String: RouteRequest] {
        let base = "/v1/threads/\(thread)"
        let someone = AccountID.generate().rawValue
        return [
            "create-thread": RouteRequest(method: .post, path: "/v1/threads/create", body: ["title": "t"]),
            "destroy-thread": RouteRequest(method: .post, path: "\(base)/destroy", body: [:]),
            "join-administrators": RouteRequest(method: .post, path: "\(base)/administrator-ids/join", body: ["accountIds": [someone]]),
            "leave-administrators": RouteRequest(method: .post, path: "\(base)/administrator-ids/leave", body: ["accountIds": [creator.rawValue]]),
            "join-members": RouteRequest(method: .post, path: "\(base)/member-ids/join", body: ["accountIds": [someone]]),
            "leave-members": RouteRequest(method: .post, path: "\(base)/member-ids/leave", body: ["accountIds": [member.rawValue]]),
            "add-messages": RouteRequest(method: .post, path: "\(base)/messages/add", body: ["messages": [["text": "hi"]]]),
            "remove-messages": RouteRequest(method: .post, path: "\(base)/messages/remove", body: ["messageIds": [message.rawValue]]),
            "get-thread": RouteRequest(method: .get, path: base),
            "list-threads": RouteRequest(method: .get, path: "/v1/threads"),
            "list-administrators": RouteRequest(method: .get, path: "\(base)/administrator-ids"),
            "list-members": RouteRequest(method: .get, path: "\(base)/member-ids"),
            "list-messages": RouteRequest(method: .get, path: "\(base)/messages"),
            "watch-thread": RouteRequest(method: .get, path: "\(base)/events"),
        ]
    }

    /// The write side of the namespace (thread streams, change logs, idempotency and
    /// create records): the read model may still settle an account index meanwhile.
    func writeSide(_ gateway: TestGateway) async throws -> [String: String] {
        try await gateway.namespaceContents().filter { !$0.key.contains(":rm:") && !$0.key.contains("{acct:") }
    }

    func send(
        _ request: RouteRequest, token: String?, accountId: AccountID? = nil, to gateway: TestGateway
    ) async throws -> TestResponse {
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Bearer \(token)" }
        if request.method == .get {
            let query = accountId.map { "?accountId=\($0)" } ?? ""
            return try await gateway.get(request.path + query, headers: headers)
        }
        headers[.contentType] = "application/json"
        var body = request.body ?? [:]
        if let accountId { body["accountId"] = accountId.rawValue }
        return try await gateway.post(request.path, json(body), headers: headers)
    }

    /// A thread by `creator` with `member` and one message, made with good tokens.
    func arrange(_ gateway: TestGateway, token given: String? = nil) async throws -> (ThreadID, MessageID) {
        var token = given ?? ""
        if given == nil { token = try await Self.token(for: creator) }
        let created = try await gateway.post(
            "/v1/threads/create", json(["title": "t", "memberIds": [member.rawValue]]),
            headers: [.contentType: "application/json", .authorization: "Bearer \(token)"])
        #expect(created.status == .created, "\(created.text)")
        let thread = try created.answer().threadId
        let added = try await gateway.post(
            "/v1/threads/\(thread)/messages/add", json(["messages": [["text": "first"]]]),
            headers: [.contentType: "application/json", .authorization: "Bearer \(token)"])
        let message = try #require(try added.answer().messageIds?.first)
        // Wait for the read model too, so later snapshots of the namespace see only what requests write.
        let settled = try await gateway.get(
            "/v1/threads/\(thread)?minVersion=\(try added.answer().version)", headers: [.authorization: "Bearer \(token)"])
        #expect(settled.status == .ok, "\(settled.text)")
        return (thread, message)
    }

    @Test func everyRouteRefusesEveryBadTokenAndWritesNothing() async throws {
        try await TestGateway.run(readSide: .worker, authentication: try await Self.hs256Verifier()) { gateway in
            let (thread, message) = try await arrange(gateway)
            let requests = requests(thread: thread, message: message)
            #expect(Set(requests.keys) == Set(FunctionRegistry.names), "every route is covered")
            let sub = creator.rawValue
            let claims = { (expiresIn: TimeInterval?, notBeforeIn: TimeInterval?, issuer: String?, audience: [String]?) in
                TestTokens.claims(sub: sub, expiresIn: expiresIn, notBeforeIn: notBeforeIn, issuer: issuer, audience: audience)
            }
            let badTokens: [(String, String?)] = [
                ("no token", nil),
                ("malformed", "not-a-jwt"),
                ("bad signature", try await TestTokens.hs256(claims(600, nil, Self.issuer, [Self.audience]), secret: Array("a different secret, long enough to sign".utf8))),
                ("expired", try await TestTokens.hs256(claims(-3_600, nil, Self.issuer, [Self.audience]))),
                ("not yet valid", try await TestTokens.hs256(claims(7_200, 3_600, Self.issuer, [Self.audience]))),
                ("wrong issuer", try await TestTokens.hs256(claims(600, nil, "https://elsewhere.test", [Self.audience]))),
                ("wrong audience", try await TestTokens.hs256(claims(600, nil, Self.issuer, ["another-service"]))),
                ("alg none", try TestTokens.unsigned(claims(600, nil, Self.issuer, [Self.audience]))),
                ("an RS256 token under an HS256 configuration", try await TestTokens.rs256(claims(600, nil, Self.issuer, [Self.audience]), kid: "rsa-1")),
            ]
            let before = try await writeSide(gateway)
            for (name, request) in requests.sorted(by: { $0.key < $1.key }) {
                for (label, token) in badTokens {
                    let response = try await send(request, token: token, to: gateway)
                    #expect(response.status == .unauthorized, "\(name), \(label): \(response.status)")
                    #expect(try response.errorCode() == "unauthenticated", "\(name), \(label)")
                    #expect(response.headers[.wwwAuthenticate] == "Bearer", "\(name), \(label)")
                }
                let mismatch = try await send(request, token: try await Self.token(for: creator), accountId: member, to: gateway)
                #expect(mismatch.status == .forbidden, "\(name), another account: \(mismatch.status)")
                #expect(try mismatch.errorCode() == "account_mismatch", "\(name)")
            }
            // The gateway's invocation route authenticates the same way.
            let invoked = try await gateway.post(
                "/function/add-messages", json(["threadId": thread.rawValue, "messages": [["text": "x"]]]))
            #expect(invoked.status == .unauthorized)
            let invokedAsOther = try await gateway.post(
                "/function/add-messages",
                json(["threadId": thread.rawValue, "accountId": member.rawValue, "messages": [["text": "x"]]]),
                headers: [.contentType: "application/json", .authorization: "Bearer \(try await Self.token(for: creator))"])
            #expect(try invokedAsOther.errorCode() == "account_mismatch")
            #expect(try await writeSide(gateway) == before, "refused requests wrote nothing")
        }
    }

    @Test func everyRouteRefusesAnHS256TokenUnderAnRS256Configuration() async throws {
        try await TestGateway.run(readSide: .worker, authentication: try await Self.rs256Verifier()) { gateway in
            let claims = TestTokens.claims(sub: creator.rawValue)
            let (thread, message) = try await arrange(gateway, token: try await TestTokens.rs256(claims, kid: "rsa-1"))
            let confused = try await TestTokens.hs256(claims)
            let before = try await writeSide(gateway)
            for (name, request) in requests(thread: thread, message: message).sorted(by: { $0.key < $1.key }) {
                let response = try await send(request, token: confused, to: gateway)
                #expect(response.status == .unauthorized, "\(name): \(response.status)")
                #expect(try response.errorCode() == "unauthenticated", "\(name)")
            }
            #expect(try await writeSide(gateway) == before, "refused requests wrote nothing")
        }
    }

    @Test func aValidTokenWorksEndToEndWithoutAccountId() async throws {
        try await TestGateway.run(testing: .live, readSide: .worker, authentication: try await Self.hs256Verifier()) { gateway in
            let port = try #require(gateway.client.port)
            let (thread, _) = try await arrange(gateway)
            let memberToken = try await Self.token(for: member)
            let headers: HTTPFields = [.authorization: "Bearer \(memberToken)"]

            // Watch with ?access_token= (EventSource), then post as the member.
            let watch = try await EventStreamClient.get(port: port, "/v1/threads/\(thread)/events?access_token=\(memberToken)&lastEventId=2")
            #expect(watch.status == 200)
            let posted = try await gateway.post(
                "/v1/threads/\(thread)/messages/add", json(["messages": [["text": "from the member"]]]),
                headers: headers.merging([.contentType: "application/json"]))
            let version = try posted.answer().version
            let event = try #require(try await watch.nextEvent())
            #expect(event.id == "\(version)")
            #expect(event.data.contains(member.rawValue), "the event's actor is the token's account")
            watch.disconnect()

            // A query names the account by token alone; an accountId that agrees is fine too (any case).
            let read = try await gateway.get("/v1/threads/\(thread)/messages?minVersion=\(version)", headers: headers)
            #expect(read.status == .ok, "\(read.text)")
            #expect(read.text.contains("from the member"))
            let agreeing = try await gateway.get("/v1/threads/\(thread)?accountId=\(member.rawValue.lowercased())", headers: headers)
            #expect(agreeing.status == .ok)
            let listed = try await gateway.get("/v1/threads", headers: headers)
            #expect(listed.text.contains(thread.rawValue))

            // A stranger's valid token gets the domain's 403, not someone else's view.
            let stranger = try await gateway.get(
                "/v1/threads/\(thread)", headers: [.authorization: "Bearer \(try await Self.token(for: AccountID.generate()))"])
            #expect(try stranger.errorCode() == "not_participant")
        }
    }
}

extension HTTPFields {
    func merging(_ other: HTTPFields) -> HTTPFields {
        var merged = self
        for field in other { merged[field.name] = field.value }
        return merged
    }
}
