import Foundation
import ThreadDomain

/// Turns an `Invocation` into a handler's `Input` and its `Output` into
/// JSON. Decoding failures become `invalid_request` naming the field, so a
/// wrong type or a malformed id never reaches a handler (or Redis).
enum InvocationCoding {
    /// Marks the refusal of a body field that contradicts the URL's parameter.
    static let differsFromURL = "differs from the URL"

    static func encode(_ output: some Encodable) throws(FunctionError) -> Data {
        if let writable = output as? any CanonicalJSONWritable { return Data(writable.canonicalJSON) }
        do {
            return try canonicalEncoder.encode(output)
        } catch {
            throw FunctionError(.internalError, "the answer could not be encoded", underlying: error)
        }
    }

    /// Sorted keys, no escaped slashes: the same value always gives the same bytes.
    static var canonicalEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// A client-facing sentence naming the field (`messages[2].text`), never Swift type names.
    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let context):
            return "\(fieldPath(context.codingPath + [key])) is required"
        case .valueNotFound(_, let context):
            return "\(fieldPath(context.codingPath)) must not be null"
        case .typeMismatch(let type, let context):
            return "\(fieldPath(context.codingPath)) must be \(jsonTypeName(type))"
        case .dataCorrupted(let context):
            if context.debugDescription == differsFromURL {
                return "\(fieldPath(context.codingPath)) in the body differs from the one in the URL"
            }
            if context.debugDescription == "not a ULID" {
                return "\(fieldPath(context.codingPath)) is not a ULID (26 Crockford base32 characters)"
            }
            return "\(fieldPath(context.codingPath)) is invalid"
        @unknown default:
            return "the request body does not match the function's input"
        }
    }

    private static func fieldPath(_ path: [any CodingKey]) -> String {
        guard !path.isEmpty else { return "the body" }
        var text = ""
        for key in path {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return text
    }

    private static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is any BinaryInteger.Type: "an integer"
        case is any BinaryFloatingPoint.Type: "a number"
        case is [Any].Type: "an array"
        case is [String: Any].Type: "an object"
        default: "of another type"
        }
    }
}
