import AuthTestSupport
import Foundation
import FunctionRuntime
import JWTKit
import Testing
import ThreadDomain
import ThreadFunctions

/// Every way a token can be refused, and the ways it is accepted, without HTTP.
@Suite struct TokenVerifierTests {
    static let secret = TestKeys.sharedSecret
    static let account = AccountID.generate()
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    typealias Claims = TestTokens.Claims

    static func claims(
        sub: String? = account.description, exp: TimeInterval? = 600, nbf: TimeInterval? = nil,
        iss: String? = nil, aud: [String]? = nil
    ) -> Claims {
        TestTokens.claims(sub: sub, expiresIn: exp, notBeforeIn: nbf, issuer: iss, audience: aud, now: now)
    }

    static func hs256(_ claims: Claims, secret: [UInt8] = secret) async throws -> String {
        try await TestTokens.hs256(claims, secret: secret)
    }

    static func verifier(_ settings: TokenSettings = TokenSettings(sharedSecret: secret)) async throws -> TokenVerifier {
        try await TokenVerifier.make(settings, now: { now })
    }

    static func refusal(_ token: String, by verifier: TokenVerifier) async -> FunctionError? {
        do {
            _ = try await verifier.actingAccount(token: token)
            return nil
        } catch {
            return error
        }
    }

    @Test func aValidTokenNamesItsSubject() async throws {
        let account = try await Self.verifier().actingAccount(token: try await Self.hs256(Self.claims()))
        #expect(account == Self.account)
    }

    @Test(arguments: [
        ("expired beyond the skew allowance", claims(exp: -31)),
        ("not valid yet beyond the skew allowance", claims(nbf: 31)),
        ("no exp", claims(exp: nil)),
        ("no sub", claims(sub: nil)),
        ("a sub that is not a ULID", claims(sub: "alice")),
    ])
    func refusesClaims(_ case: (String, Claims)) async throws {
        let error = await Self.refusal(try await Self.hs256(`case`.1), by: try await Self.verifier())
        #expect(error?.code == .unauthenticated, "\(`case`.0)")
    }

    @Test func toleratesClockSkewWithinTheAllowance() async throws {
        let verifier = try await Self.verifier()
        #expect(try await verifier.actingAccount(token: try await Self.hs256(Self.claims(exp: -29))) == Self.account)
        #expect(try await verifier.actingAccount(token: try await Self.hs256(Self.claims(nbf: 29))) == Self.account)
    }

    @Test func checksIssuerAndAudienceWhenConfigured() async throws {
        let verifier = try await Self.verifier(TokenSettings(sharedSecret: Self.secret, issuer: "https://id.example", audience: "threadweave"))
        let good = try await Self.hs256(Self.claims(iss: "https://id.example", aud: ["other", "threadweave"]))
        #expect(try await verifier.actingAccount(token: good) == Self.account)
        for claims in [
            Self.claims(iss: "https://evil.example", aud: ["threadweave"]),
            Self.claims(aud: ["threadweave"]),
            Self.claims(iss: "https://id.example", aud: ["other"]),
            Self.claims(iss: "https://id.example"),
        ] {
            #expect(await Self.refusal(try await Self.hs256(claims), by: verifier)?.code == .unauthenticated)
        }
    }

    @Test func refusesAWrongSignatureAndGarbage() async throws {
        let verifier = try await Self.verifier()
        let forged = try await Self.hs256(Self.claims(), secret: Array("another secret that is long enough!!".utf8))
        #expect(await Self.refusal(forged, by: verifier)?.code == .unauthenticated)
        for garbage in ["", "abc", "a.b.c", "..", "eyJhbGciOiJIUzI1NiJ9..", String(repeating: "x", count: 10_000)] {
            #expect(await Self.refusal(garbage, by: verifier)?.code == .unauthenticated, "\(garbage.prefix(20))")
        }
    }

    @Test func refusesAlgorithmNone() async throws {
        let unsigned = try TestTokens.unsigned(Self.claims())
        for token in [unsigned, unsigned + "c2ln"] {
            #expect(await Self.refusal(token, by: try await Self.verifier())?.code == .unauthenticated)
        }
    }

    @Test func refusesAnHS256TokenUnderAnRS256Configuration() async throws {
        let rsa = try Insecure.RSA.PrivateKey(pem: TestKeys.rsaPrivatePEM)
        let verifier = try await Self.verifier(TokenSettings(jwks: try TestKeys.jwks(rsa: rsa.publicKey, kid: "rsa-1")))
        // Signed with the public key's own bytes as an HMAC secret: the classic confusion attack.
        let confused = try await Self.hs256(Self.claims(), secret: Array(rsa.publicKey.pemRepresentation.utf8))
        #expect(await Self.refusal(confused, by: verifier)?.code == .unauthenticated)

        let good = try await TestTokens.rs256(Self.claims(), kid: "rsa-1")
        #expect(try await verifier.actingAccount(token: good) == Self.account)
    }

    @Test func acceptsES256FromAJWKS() async throws {
        let key = ES256PrivateKey()
        let parameters = try #require(key.publicKey.parameters)
        let jwks = #"{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","kid":"ec-1","x":"\#(parameters.x)","y":"\#(parameters.y)"}]}"#
        let verifier = try await Self.verifier(TokenSettings(jwks: jwks))
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: key, kid: "ec-1")
        #expect(try await verifier.actingAccount(token: try await keys.sign(Self.claims(), kid: "ec-1")) == Self.account)
        let other = JWTKeyCollection()
        await other.add(ecdsa: ES256PrivateKey(), kid: "ec-1")
        #expect(await Self.refusal(try await other.sign(Self.claims(), kid: "ec-1"), by: verifier)?.code == .unauthenticated)
    }

    @Test func setupRefusesMissingOrWeakKeyMaterial() async {
        await #expect(throws: TokenSetupError.self) { _ = try await TokenVerifier.make(TokenSettings()) }
        await #expect(throws: TokenSetupError.self) { _ = try await TokenVerifier.make(TokenSettings(sharedSecret: Array("short".utf8))) }
        await #expect(throws: TokenSetupError.self) { _ = try await TokenVerifier.make(TokenSettings(jwks: "not json")) }
    }

    @Test func theIssuerMintsTokensTheVerifierAccepts() async throws {
        let token = try await TokenIssuer(sharedSecret: Self.secret).token(account: Self.account, lifetime: .seconds(60), now: Self.now)
        #expect(try await Self.verifier().actingAccount(token: token) == Self.account)
        let expired = try await TokenIssuer(sharedSecret: Self.secret).token(
            account: Self.account, lifetime: .seconds(60), now: Self.now.addingTimeInterval(-120))
        #expect(await Self.refusal(expired, by: try await Self.verifier())?.code == .unauthenticated)
    }
}
