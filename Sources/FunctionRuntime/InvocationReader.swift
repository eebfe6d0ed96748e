import Foundation
import Hummingbird
import ThreadDomain
import ThreadFunctions

/// Reads a request into the `Invocation` a function decodes its input from:
/// a POST's JSON body (checked for type, size and depth, not parsed here)
/// plus the route's path parameters, or a GET's path and query parameters.
/// Every refusal here happens before any function (and so any Redis call) runs.
struct InvocationReader: Sendable {
    let limits: RuntimeConfiguration.HTTP

    func invocation(
        of request: Request, parameters: [(name: String, value: String)], actingAccount: AccountID?
    ) async throws(FunctionError) -> Invocation {
        var byName: [String: String] = [:]
        for (name, value) in parameters where byName[name] == nil { byName[name] = value }
        if let actingAccount { try Self.checkNamedAccount(byName[Invocation.actingAccountField], is: actingAccount) }
        return Invocation(body: try await body(of: request), parameters: byName, authenticatedAccount: actingAccount?.description)
    }

    /// An `accountId` a URL gives under authentication must name the token's account.
    static func checkNamedAccount(_ named: String?, is actingAccount: AccountID) throws(FunctionError) {
        guard let named else { return }
        guard AccountID(named) == actingAccount else {
            throw FunctionError(.accountMismatch, "accountId names another account than the bearer token")
        }
    }

    private func body(of request: Request) async throws(FunctionError) -> Data {
        // A query (GET) takes its input from the URL alone: a body is ignored, unread.
        guard request.method == .post else { return Data() }
        // A POST must say it is JSON, even when empty: a form or a bare POST,
        // which a browser sends cross-site without asking, never runs a command.
        guard request.headers.value(of: .contentType).map(Self.isJSON) ?? false else {
            throw FunctionError(.unsupportedMediaType, "a POST needs Content-Type: application/json")
        }
        if let declaredLength = request.headers.value(of: .contentLength).flatMap({ Int($0) }), declaredLength > limits.maximumBodyBytes {
            throw tooLarge
        }
        let body = try await collectBody(of: request)
        try checkDepth(body)
        return body
    }

    /// Stops reading at the first byte over the limit: a large body is never buffered.
    private func collectBody(of request: Request) async throws(FunctionError) -> Data {
        var collected = Data()
        do {
            for try await chunk in request.body {
                guard collected.count + chunk.readableBytes <= limits.maximumBodyBytes else { throw tooLarge }
                collected.append(contentsOf: chunk.readableBytesView)
            }
        } catch let error as FunctionError {
            throw error
        } catch {
            throw FunctionError(.invalidRequest, "the body could not be read", underlying: error)
        }
        return collected
    }

    private var tooLarge: FunctionError {
        FunctionError(.payloadTooLarge, "the body exceeds \(limits.maximumBodyBytes) bytes")
    }

    /// Counts bracket nesting outside strings, so deeply nested JSON is refused
    /// before a recursive decoder sees it.
    private func checkDepth(_ body: Data) throws(FunctionError) {
        let maximum = limits.maximumJSONDepth
        // Over the raw bytes: iterating `Data` itself costs several times more.
        let tooDeep = body.withUnsafeBytes { bytes in
            var depth = 0
            var inString = false
            var escaped = false
            for byte in bytes {
                if inString {
                    if escaped {
                        escaped = false
                    } else if byte == UInt8(ascii: "\\") {
                        escaped = true
                    } else if byte == UInt8(ascii: "\"") {
                        inString = false
                    }
                    continue
                }
                switch byte {
                case UInt8(ascii: "\""):
                    inString = true
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                    if depth > maximum { return true }
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                default:
                    break
                }
            }
            return false
        }
        if tooDeep {
            throw FunctionError(.invalidRequest, "the body nests deeper than \(maximum) levels")
        }
    }

    /// `application/json` or any `+json` type, parameters (charset) allowed.
    static func isJSON(_ contentType: String) -> Bool {
        // What clients send, checked on bytes: Foundation's trimming costs some 20,000 instructions.
        if isPlainJSON(contentType.utf8) { return true }
        let mediaType = contentType.split(separator: ";", maxSplits: 1).first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        } ?? ""
        return mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json"))
    }

    /// `application/json` in any case, alone or before its parameters.
    private static func isPlainJSON(_ contentType: String.UTF8View) -> Bool {
        let expected = "application/json".utf8
        var bytes = contentType.makeIterator()
        for byte in expected {
            guard let next = bytes.next() else { return false }
            let lower = next >= UInt8(ascii: "A") && next <= UInt8(ascii: "Z") ? next | 0x20 : next
            guard lower == byte else { return false }
        }
        let after = bytes.next()
        return after == nil || after == UInt8(ascii: ";")
    }
}
