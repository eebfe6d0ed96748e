import Foundation

// The `data` field of a stream entry: compact JSON, camelCase, keys sorted so
// the same event always has the same bytes, absent optionals omitted.

private struct AccountIdsData: Decodable { var accountIds: [AccountID] }
private struct MessagesData: Decodable { var messages: [AddedMessage] }
private struct MessageIdsData: Decodable { var messageIds: [MessageID] }

/// `ThreadDestroyed` carries nothing, but its data must still be a JSON object.
private struct EmptyData: Decodable {
    private enum NoKeys: CodingKey {}
    init(from decoder: any Decoder) throws {
        _ = try decoder.container(keyedBy: NoKeys.self)
    }
}

private let eventDecoder = JSONDecoder()

extension ThreadEvent {
    /// The stream entry's `data` field.
    /// Written by hand (keys sorted, absent optionals and nothing else left
    /// out): every append encodes its events; tests hold it to the bytes of the
    /// Codable data types below through `JSONEncoder`.
    public func encodedData() -> String {
        var writer = CanonicalJSONWriter()
        writer.beginObject()
        switch self {
        case .threadCreated(let created):
            writer.key("administratorIds")
            writer.ids(created.administratorIds)
            writer.key("creatorId")
            writer.string(created.creatorId.rawValue)
            writer.key("memberIds")
            writer.ids(created.memberIds)
            writer.field("parentThreadId", created.parentThreadId?.rawValue)
            writer.field("remarks", created.remarks)
            writer.key("threadId")
            writer.string(created.threadId.rawValue)
            writer.key("title")
            writer.string(created.title)
        case .threadDestroyed:
            break
        case .administratorIdsJoined(let ids), .administratorIdsLeft(let ids),
            .memberIdsJoined(let ids), .memberIdsLeft(let ids):
            writer.key("accountIds")
            writer.ids(ids)
        case .messagesAdded(let messages):
            writer.key("messages")
            writer.beginArray()
            for message in messages {
                writer.beginObject()
                writer.key("id")
                writer.string(message.id.rawValue)
                writer.key("mentions")
                writer.ids(message.mentions)
                writer.field("replyTo", message.replyTo?.rawValue)
                writer.key("senderId")
                writer.string(message.senderId.rawValue)
                writer.key("text")
                writer.string(message.text)
                writer.endObject()
            }
            writer.endArray()
        case .messagesRemoved(let ids):
            writer.key("messageIds")
            writer.ids(ids)
        }
        writer.endObject()
        return String(decoding: writer.bytes, as: UTF8.self)
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
