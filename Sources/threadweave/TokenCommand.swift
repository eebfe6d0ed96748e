import ArgumentParser
import Foundation
import FunctionRuntime
import ThreadDomain

/// `threadweave token --account <id> [--ttl 1h]`: an HS256 token signed with
/// the configured secret, for development and tests (production tokens come
/// from the identity provider).
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Mint a JWT for an account with THREADWEAVE_JWT_SECRET(_FILE) (development and tests).",
        discussion: "Adds iss and aud when THREADWEAVE_JWT_ISSUER and THREADWEAVE_JWT_AUDIENCE are set."
    )

    @OptionGroup var authentication: AuthenticationOptions

    @Option(help: "The acting account (a ULID): the token's sub.")
    var account: String

    @Option(help: "Lifetime: a number with s, m, h or d (default 1h).")
    var ttl = "1h"

    func validate() throws {
        guard AccountID(account) != nil else { throw ValidationError("--account must be a ULID (26 Crockford base32 characters)") }
        guard Self.seconds(ttl) != nil else { throw ValidationError("--ttl must be a positive number with s, m, h or d, such as 15m") }
    }

    func run() async throws {
        let settings = try authentication.tokenSettings()
        guard let secret = settings.sharedSecret else {
            throw ValidationError("set THREADWEAVE_JWT_SECRET or THREADWEAVE_JWT_SECRET_FILE to sign with")
        }
        // The same checks a server applies to the secret, so a token minted here is one it accepts.
        do {
            _ = try await TokenVerifier.make(TokenSettings(sharedSecret: secret))
        } catch {
            throw ValidationError(error.description)
        }
        let issuer = await TokenIssuer(sharedSecret: secret)
        print(
            try await issuer.token(
                account: AccountID(account)!, lifetime: .seconds(Self.seconds(ttl)!),
                issuer: settings.issuer, audience: settings.audience))
    }

    static func seconds(_ text: String) -> Int64? {
        guard let unit = text.last, let amount = Int64(text.dropLast()), amount > 0 else { return nil }
        switch unit {
        case "s": return amount
        case "m": return amount * 60
        case "h": return amount * 3_600
        case "d": return amount * 86_400
        default: return nil
        }
    }
}
