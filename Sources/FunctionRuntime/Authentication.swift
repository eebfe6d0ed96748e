public import Foundation
import JWTKit
public import ThreadDomain
public import ThreadFunctions

/// Who is calling. With `.none` the request's `accountId` is trusted as given
/// (the local walk-through); with `.jwt` a verified bearer token's `sub` is
/// the acting account and nothing else is (DESIGN §4, "Authentication").
public enum Authentication: Sendable {
    case none
    case jwt(TokenVerifier)

    /// The acting account of a request, from `Authorization: Bearer <token>`
    /// or else `queryToken` (watch-thread passes `?access_token=`: browsers'
    /// EventSource cannot set headers). `nil` in `.none` mode.
    func actingAccount(authorization: String?, queryToken: String?) async throws(FunctionError) -> AccountID? {
        guard case .jwt(let verifier) = self else { return nil }
        let token: Substring
        if let authorization {
            let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                throw FunctionError(.unauthenticated, "the Authorization header must be 'Bearer <token>'")
            }
            token = parts[1].drop { $0 == " " }
        } else if let queryToken {
            token = Substring(queryToken)
        } else {
            throw FunctionError(.unauthenticated, "a bearer token is required (Authorization: Bearer <token>)")
        }
        return try await verifier.actingAccount(token: String(token))
    }
}

/// What a `jwt` process verifies tokens with. Read once at the edge.
public struct TokenSettings: Sendable, Hashable {
    /// HS256: the shared secret's bytes.
    public var sharedSecret: [UInt8]?
    /// RS256 / ES256: a JSON Web Key Set (the public keys, each with a `kid`).
    public var jwks: String?
    /// When set, `iss` must equal it.
    public var issuer: String?
    /// When set, `aud` must name it.
    public var audience: String?
    /// Allowance for clocks that disagree, on `exp` and `nbf`.
    public var clockSkew: Duration

    public init(
        sharedSecret: [UInt8]? = nil, jwks: String? = nil, issuer: String? = nil, audience: String? = nil,
        clockSkew: Duration = .seconds(30)
    ) {
        self.sharedSecret = sharedSecret
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.clockSkew = clockSkew
    }
}

public struct TokenSetupError: Error, CustomStringConvertible {
    public var description: String
}

/// The claims a token must carry: `sub` (a ULID, the acting account) and
/// `exp`; `nbf`, `iss`, `aud` when present. Time and audience checks are the
/// verifier's, so they share one clock and one skew allowance.
struct AccessClaims: JWTPayload {
    var sub: SubjectClaim
    var exp: ExpirationClaim
    var nbf: NotBeforeClaim?
    var iat: IssuedAtClaim?
    var iss: IssuerClaim?
    var aud: AudienceClaim?

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Verifies bearer tokens: the header's `alg` must be one the configuration
/// names (HS256 for a shared secret, RS256/ES256 for a JWKS); `none` and any
/// other are refused before a signature is looked at, so no key is ever used
/// with an algorithm it was not given for.
public struct TokenVerifier: Sendable {
    private let keys: JWTKeyCollection
    private let algorithms: Set<String>
    private let settings: TokenSettings
    private let now: @Sendable () -> Date

    public static func make(
        _ settings: TokenSettings, now: @escaping @Sendable () -> Date = Date.init
    ) async throws(TokenSetupError) -> TokenVerifier {
        let keys = JWTKeyCollection()
        var algorithms: Set<String> = []
        if let secret = settings.sharedSecret {
            guard secret.count >= 32 else {
                throw TokenSetupError(description: "the JWT secret must be at least 32 bytes (256 bits) for HS256")
            }
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            algorithms.insert("HS256")
        }
        if let jwks = settings.jwks {
            do {
                let set = try JSONDecoder().decode(JWKS.self, from: Data(jwks.utf8))
                guard !set.keys.isEmpty else { throw TokenSetupError(description: "the JWKS holds no keys") }
                for key in set.keys {
                    switch key.keyType {
                    case .rsa: algorithms.insert("RS256")
                    case .ecdsa: algorithms.insert("ES256")
                    default: throw TokenSetupError(description: "the JWKS holds a key that is neither RSA nor EC")
                    }
                }
                try await keys.add(jwks: set)
            } catch let error as TokenSetupError {
                throw error
            } catch {
                throw TokenSetupError(description: "the JWKS could not be read: \(error)")
            }
        }
        guard !algorithms.isEmpty else {
            throw TokenSetupError(
                description: "jwt authentication needs key material: THREADWEAVE_JWT_SECRET(_FILE) or THREADWEAVE_JWKS_FILE")
        }
        return TokenVerifier(keys: keys, algorithms: algorithms, settings: settings, now: now)
    }

    /// The account the token's `sub` names, or 401 `unauthenticated`. The
    /// messages say which check failed but never echo the token.
    public func actingAccount(token: String) async throws(FunctionError) -> AccountID {
        let algorithm = try headerAlgorithm(of: token)
        guard algorithms.contains(algorithm) else {
            throw FunctionError(.unauthenticated, "the token's algorithm is not accepted")
        }
        let claims: AccessClaims
        do {
            claims = try await keys.verify(token, as: AccessClaims.self, iteratingKeys: true)
        } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
            throw FunctionError(.unauthenticated, "the token's signature does not verify")
        } catch {
            throw FunctionError(.unauthenticated, "the token is malformed or lacks a required claim (sub, exp)")
        }
        let now = now()
        let skew = Double(settings.clockSkew.components.seconds)
        guard claims.exp.value.timeIntervalSince(now) > -skew else {
            throw FunctionError(.unauthenticated, "the token has expired")
        }
        if let notBefore = claims.nbf, notBefore.value.timeIntervalSince(now) > skew {
            throw FunctionError(.unauthenticated, "the token is not valid yet")
        }
        if let issuer = settings.issuer, claims.iss?.value != issuer {
            throw FunctionError(.unauthenticated, "the token's issuer is not accepted")
        }
        if let audience = settings.audience, !(claims.aud?.value.contains(audience) ?? false) {
            throw FunctionError(.unauthenticated, "the token is not meant for this audience")
        }
        guard let account = AccountID(claims.sub.value) else {
            throw FunctionError(.unauthenticated, "the token's sub is not an account id (a ULID)")
        }
        return account
    }

    private struct Header: Decodable {
        var alg: String
    }

    private func headerAlgorithm(of token: String) throws(FunctionError) -> String {
        let segments = token.split(separator: ".", omittingEmptySubsequences: false)
        guard segments.count == 3, let data = Data(base64URLEncoded: segments[0]),
            let header = try? JSONDecoder().decode(Header.self, from: data)
        else {
            throw FunctionError(.unauthenticated, "the token is not a JWT (header.payload.signature)")
        }
        return header.alg
    }
}

/// Mints HS256 tokens with the configured secret: `threadweave token` and the tests.
public struct TokenIssuer: Sendable {
    private let keys: JWTKeyCollection

    public init(sharedSecret: [UInt8]) async {
        keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: sharedSecret), digestAlgorithm: .sha256)
    }

    public func token(
        account: AccountID, lifetime: Duration, issuer: String? = nil, audience: String? = nil, now: Date = Date()
    ) async throws -> String {
        let claims = AccessClaims(
            sub: SubjectClaim(value: account.description),
            exp: ExpirationClaim(value: now.addingTimeInterval(Double(lifetime.components.seconds))),
            nbf: nil,
            iat: IssuedAtClaim(value: now),
            iss: issuer.map { IssuerClaim(value: $0) },
            aud: audience.map { AudienceClaim(value: [$0]) })
        return try await keys.sign(claims)
    }
}

extension Data {
    /// base64url without padding, as JWT segments are written.
    init?(base64URLEncoded text: Substring) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        self.init(base64Encoded: base64)
    }
}
