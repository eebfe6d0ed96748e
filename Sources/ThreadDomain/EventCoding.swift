import Foundation

// The `data` field of a stream entry: compact JSON, camelCase, keys sorted so
// the same event always has the same bytes, absent optionals omitted.

private struct AccountIdsData: Codable { var accountIds: [AccountID] }
private struct MessagesData: Codable { var messages: [AddedMessage] }
private struct MessageIdsData: Codable { var messageIds: [MessageID] }

/// `ThreadDestroyed` carries nothing, but its data must still be a JSON object.
private struct EmptyData: Decodable {
    private enum NoKeys: CodingKey {}
    init(from decoder: any Decoder) throws {
        _ = try decoder.container(keyedBy: NoKeys.self)
    }
}

private let eventEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return encoder
}()

private let eventDecoder = JSONDecoder()

extension ThreadEvent {
    /// The stream entry's `data` field.
    public func encodedData() -> String {
        switch self {
        case .threadCreated(let created): encodeJSON(created)
        case .threadDestroyed: "{}"
        case .administratorIdsJoined(let ids), .administratorIdsLeft(let ids),
            .memberIdsJoined(let ids), .memberIdsLeft(let ids):
            encodeJSON(AccountIdsData(accountIds: ids))
        case .messagesAdded(let messages): encodeJSON(MessagesData(messages: messages))
        case .messagesRemoved(let ids): encodeJSON(MessageIdsData(messageIds: ids))
        }
    }

    /// Reads a stream entry's `type` and `data`. This is the one place that
    /// upcasts older shapes of an event: a breaking change gets a new type
    /// name here, and the old name keeps decoding into the current case.
    /// Unknown fields are ignored; an unknown type or unreadable data is `invalid_request`.
    public static func decode(type: String, data: String) throws(DomainError) -> ThreadEvent {
        try decode(type: type, jsonData: Data(data.utf8))
    }

    public static func decode(type: String, data: some Collection<UInt8>) throws(DomainError) -> ThreadEvent {
        try decode(type: type, jsonData: Data(data))
    }

    private static func decode(type: String, jsonData: Data) throws(DomainError) -> ThreadEvent {
        do {
            switch type {
            case "ThreadCreated":
                return .threadCreated(try eventDecoder.decode(ThreadCreated.self, from: jsonData))
            case "ThreadDestroyed":
                _ = try eventDecoder.decode(EmptyData.self, from: jsonData)
                return .threadDestroyed
            case "AdministratorIdsJoined":
                return .administratorIdsJoined(try eventDecoder.decode(AccountIdsData.self, from: jsonData).accountIds)
            case "AdministratorIdsLeft":
                return .administratorIdsLeft(try eventDecoder.decode(AccountIdsData.self, from: jsonData).accountIds)
            case "MemberIdsJoined":
                return .memberIdsJoined(try eventDecoder.decode(AccountIdsData.self, from: jsonData).accountIds)
            case "MemberIdsLeft":
                return .memberIdsLeft(try eventDecoder.decode(AccountIdsData.self, from: jsonData).accountIds)
            case "MessagesAdded":
                return .messagesAdded(try eventDecoder.decode(MessagesData.self, from: jsonData).messages)
            case "MessagesRemoved":
                return .messagesRemoved(try eventDecoder.decode(MessageIdsData.self, from: jsonData).messageIds)
            default:
                throw DomainError(.invalidRequest, "unknown event type '\(type)'")
            }
        } catch let error as DomainError {
            throw error
        } catch {
            throw DomainError(.invalidRequest, "\(type) event data is not valid: \(describe(error))")
        }
    }
}

private func encodeJSON(_ value: some Encodable) -> String {
    do {
        return String(decoding: try eventEncoder.encode(value), as: UTF8.self)
    } catch {
        // Event data is strings and arrays of strings: JSONEncoder only fails on non-finite numbers.
        preconditionFailure("event data failed to encode: \(error)")
    }
}

/// A short account of a decoding failure that names the field, without echoing the input.
private func describe(_ error: any Error) -> String {
    func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.isEmpty ? "the top level" : "'" + codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".") + "'"
    }
    switch error as? DecodingError {
    case .keyNotFound(let key, let context)?:
        return "missing \(path(context.codingPath + [key]))"
    case .typeMismatch(_, let context)?, .valueNotFound(_, let context)?:
        return "wrong type at \(path(context.codingPath))"
    case .dataCorrupted(let context)?:
        return context.codingPath.isEmpty ? "not JSON" : "bad value at \(path(context.codingPath))"
    default:
        return "unreadable"
    }
}
