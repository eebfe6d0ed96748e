import ArgumentParser
import Foundation
import FunctionRuntime
import Logging
import ThreadDomain

/// How HTTP processes authenticate callers (`--auth`, else `THREADWEAVE_AUTH`)
/// and the JWT settings, read here, once, from flags, the environment and
/// secret files (`*_FILE`, as Kubernetes mounts Secrets).
struct AuthenticationOptions: ParsableArguments {
    enum Mode: String, ExpressibleByArgument, CaseIterable {
        case jwt, none
    }

    @Option(help: "jwt: a bearer token's sub is the acting account; none: trust accountId (env THREADWEAVE_AUTH).")
    var auth: Mode?

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    private func setting(_ name: String) -> String? {
        environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The value of `NAME`, or the contents of the file `NAME_FILE` names
    /// (one trailing newline dropped); both at once is a mistake worth stopping for.
    func secret(_ name: String) throws -> String? {
        let direct = setting(name)
        guard let path = setting(name + "_FILE") else { return direct }
        guard direct == nil else { throw ValidationError("set \(name) or \(name)_FILE, not both") }
        do {
            var text = try String(contentsOfFile: path, encoding: .utf8)
            if text.hasSuffix("\n") { text.removeLast() }
            if text.hasSuffix("\r") { text.removeLast() }
            return text
        } catch {
            throw ValidationError("\(name)_FILE: cannot read \(path)")
        }
    }

    func tokenSettings() throws -> TokenSettings {
        var jwks: String?
        if let path = setting("THREADWEAVE_JWKS_FILE") {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ValidationError("THREADWEAVE_JWKS_FILE: cannot read \(path)")
            }
            jwks = text
        }
        return TokenSettings(
            sharedSecret: try secret("THREADWEAVE_JWT_SECRET").map { Array($0.utf8) },
            jwks: jwks,
            issuer: setting("THREADWEAVE_JWT_ISSUER"),
            audience: setting("THREADWEAVE_JWT_AUDIENCE"))
    }

    private var hasKeyMaterial: Bool {
        ["THREADWEAVE_JWT_SECRET", "THREADWEAVE_JWT_SECRET_FILE", "THREADWEAVE_JWKS_FILE"].contains { setting($0) != nil }
    }

    /// `function` processes default to jwt and refuse to start without key
    /// material; `serve` uses jwt when key material is configured and
    /// otherwise trusts `accountId`, saying so in a warning.
    func authentication(defaultMode: Mode, logger: Logger) async throws -> Authentication {
        let mode: Mode
        if let auth {
            mode = auth
        } else if let named = setting("THREADWEAVE_AUTH") {
            guard let parsed = Mode(rawValue: named.lowercased()) else {
                throw ValidationError("THREADWEAVE_AUTH must be jwt or none, not '\(named)'")
            }
            mode = parsed
        } else {
            mode = defaultMode == .none && hasKeyMaterial ? .jwt : defaultMode
        }
        switch mode {
        case .none:
            logger.warning(
                "authentication is off (THREADWEAVE_AUTH=none): any caller can act as any accountId; for local use only")
            return .none
        case .jwt:
            do {
                let verifier = try await TokenVerifier.make(try tokenSettings())
                logger.info("authentication: jwt bearer tokens")
                return .jwt(verifier)
            } catch let error as TokenSetupError {
                throw ValidationError(error.description)
            }
        }
    }
}
