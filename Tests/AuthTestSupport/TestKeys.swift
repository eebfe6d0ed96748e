public import Foundation
public import JWTKit

/// Key material for authentication tests. The RSA key was generated for
/// these tests alone (`openssl genrsa 2048`) and protects nothing.
public enum TestKeys {
    /// HS256 secret, 32 bytes: the minimum a server accepts.
    public static let sharedSecret = Array("0123456789abcdef0123456789abcdef".utf8)

    public static let rsaPrivatePEM = """
        -----BEGIN PRIVATE KEY-----
        MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCkf6WWAopsrvyn
        RirFQCvGe+acX42vMqcG0gsZ6tk+0RLG/EAZYjnrRWM+LPMRHGVDrpue9hHYkyQb
        rAMpB1TmvcK6GoCiGlA5qUlA2H7xJ4/li00PVrtPUwJlT3MxbT4OvLSsM8+WoIHa
        Jiw98Ux9mz9bcktrXWRuie6knYKTqgekMIvc/2bClxf7ZWjFkDjcrBhNll2drZTz
        YToQuRhtZyKBEgNQMj3V95TvCe3Y/RLCEemW+JbinzMoLsICAOj6+pfqR0VgnlET
        At+HpbFwfG4Qr7nHULWpZI/sBM7+gq4cjFf02DW2ehAXqBzqits/LxWqNEF3lhgu
        q/xwHfx/AgMBAAECggEASvOSWiB8O/sbSYhSEqAjkgOAVv2+y/YTXqszvbJhHBsd
        KCdleWtlIoryJjFK6x/6D/WuGKbcCMc6a5Vbt0UM7TnHUQ6kT7gXl75Hj1FVvcGd
        8iQfj36gSAt1iv3BaeLxpLtcwx20V1h48hH0lKCujoi/PIZ+UMQz753Pa5gNGARk
        KkSutiZUt2rvjvqmznaFroI40F+3e2VINscZl1xrG76irCDGbQvy/dUBSZGDlsIC
        cAG/ROyyoi7DAj0dKr/QlgLTC4nhtV09/5qg3Sb71+XN+er0RXnC3E5kEMx42axh
        WkbXsM7pZrGOJM9a8QPEAOOwRzMZFnqSs6ffRnMToQKBgQDh592rU4bDMME0lGWb
        cYRtqExoZavKi30xgZJPaIZk4rupgSl76HrMuyIx5BffpzIEVBgfQrUA5Nfl7/2J
        R1FHC7eZHX1RVcoAhFzV0ukoVEqgIJCZDnI76lnpY0IQOLLlhiwzwhaIjuZ4jEuM
        KjGqNVoe+YPFLcj9L1OcvPhK8QKBgQC6aZhWDtDxS457x9JOg8LIzcoX1y1Z7A7f
        BB0DlWFPG2Bpd6CP3BWBSulIryw0g4PWnDv/aGKfyGQGJhxTWYlO4V6tXrYjiyJV
        vsfqJFMc3iVSunjVq4DdDlK0MIFNL+JTq8fiXDXvDOxb2Nlh9wwIre5uyFJ0KicC
        cTdXqgFebwKBgFydJm+6yqDzOAJKZG2Z2GTsfoa+R/O9xBGrwUP04kQyACW54jv+
        T3nnrlkt3eu/K+5CW7FVM8euCiUmgpbpOhUaZKbNRDc4KJyVp0myMgxqoj2LnDxj
        g8m0hi/8lXT5Cb63hx+hDoPlse7x9Xb9RWc2gD/6o18PKjtCT9EOV+zBAoGBAK4C
        zlJfKEpmpo4DnNzwAE8kUudoVQxg4AzssQzcT+bhfmFVa0t/PY/g1t2jr9chgVs/
        on4r+gx/qmdXAhAIP7WjiZa7F7kcMyPpoIKAABmtgRe1vABxRSyVJzzPHpRoA5Tp
        gQBb5XjODoE6bsoVLGWZvz4ov1dy1dFg0DGEIBz/AoGACy3dGj533Fogha0q7JLT
        kw1zF8dtCsXKUQfVdvwTRl99GHbofFUIRTxvpv8j1rI67mDk5eWG01PqqJJxRgl8
        ZeToXFiVeXxe00sP2YxHFFmyRiWM9MZjycbRDOYntyDjaWi/w/+3DuSlPJVnUnsI
        r4PXUMWxm+2eUt+DPPrf0kg=
        -----END PRIVATE KEY-----
        """

    /// A JWKS holding `rsa`'s public half under `kid`, as an identity provider publishes it.
    public static func jwks(rsa: Insecure.RSA.PublicKey, kid: String) throws -> String {
        let (modulus, exponent) = try rsa.getKeyPrimitives()
        return #"{"keys":[{"kty":"RSA","alg":"RS256","use":"sig","kid":"\#(kid)","n":"\#(modulus.base64URL)","e":"\#(exponent.base64URL)"}]}"#
    }
}

extension Data {
    /// base64url without padding, as JWTs and JWKs write bytes.
    public var base64URL: String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// Tokens as a test wants them, including ones a server must refuse.
public enum TestTokens {
    public struct Claims: JWTPayload {
        public var sub: String?
        public var exp: Int?
        public var nbf: Int?
        public var iss: String?
        public var aud: [String]?
        public func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    /// Claims for `sub`, with `exp`/`nbf` given in seconds from `now`.
    public static func claims(
        sub: String?, expiresIn: TimeInterval? = 600, notBeforeIn: TimeInterval? = nil,
        issuer: String? = nil, audience: [String]? = nil, now: Date = Date()
    ) -> Claims {
        Claims(
            sub: sub, exp: expiresIn.map { Int(now.timeIntervalSince1970 + $0) },
            nbf: notBeforeIn.map { Int(now.timeIntervalSince1970 + $0) }, iss: issuer, aud: audience)
    }

    public static func hs256(_ claims: Claims, secret: [UInt8] = TestKeys.sharedSecret) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await keys.sign(claims)
    }

    public static func rs256(_ claims: Claims, kid: String) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(rsa: try Insecure.RSA.PrivateKey(pem: TestKeys.rsaPrivatePEM), digestAlgorithm: .sha256, kid: JWKIdentifier(string: kid))
        return try await keys.sign(claims, kid: JWKIdentifier(string: kid))
    }

    /// `alg: none`: no signature at all.
    public static func unsigned(_ claims: Claims) throws -> String {
        let header = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64URL
        return "\(header).\(try JSONEncoder().encode(claims).base64URL)."
    }
}
