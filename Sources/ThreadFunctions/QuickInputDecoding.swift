import Foundation
import ThreadDomain

/// An input with a hand-written decoder for the shape clients send on every
/// call, beside its Codable one. `JSONDecoder` with the parameter overlay
/// costs some 70,000 instructions for one add-messages body (boxing, generic
/// metadata look-ups), a fifth of the HTTP stack's whole cost for a request.
/// The quick decoder answers nil for anything but that shape: an unknown,
/// repeated or parameter-given key, a null where a value is required, a wrong
/// type, a malformed id, broken JSON. The Codable decoder then decodes it
/// (or refuses it, in its own words), so the quick one never changes an
/// answer; a test holds the two to the same inputs.
protocol QuickDecodableInput {
    static func quickDecode(body: Data, parameters: [String: String]) -> Self?
}

extension AddMessagesInput: QuickDecodableInput {
    /// `{"accountId","messages":[{"id"?,"text","replyTo"?,"mentions"?}],"commandId"?}`,
    /// `threadId` from the route (or the body when the route gives none).
    static func quickDecode(body: Data, parameters: [String: String]) -> AddMessagesInput? {
        body.withUnsafeBytes { raw in
            var scanner = JSONScanner(raw.bindMemory(to: UInt8.self))
            var threadId = parameters["threadId"].flatMap(ThreadID.init)
            var accountId = parameters[Invocation.actingAccountField].flatMap(AccountID.init)
            if parameters["threadId"] != nil, threadId == nil { return nil }
            if parameters[Invocation.actingAccountField] != nil, accountId == nil { return nil }
            var messages: [NewMessageInput]?
            var commandId: String??
            let complete = scanner.object { key, scanner in
                // A field the route gives too goes through the Codable path, which compares the two.
                guard parameters[key] == nil else { return false }
                switch key {
                case "threadId" where threadId == nil:
                    threadId = scanner.string().flatMap(ThreadID.init)
                    return threadId != nil
                case "accountId" where accountId == nil:
                    accountId = scanner.string().flatMap(AccountID.init)
                    return accountId != nil
                case "commandId" where commandId == nil:
                    if scanner.null() {
                        commandId = .some(nil)
                        return true
                    }
                    guard let text = scanner.string() else { return false }
                    commandId = text
                    return true
                case "messages" where messages == nil:
                    var list: [NewMessageInput] = []
                    let read = scanner.array { scanner in
                        guard let message = NewMessageInput.quickDecode(&scanner) else { return false }
                        list.append(message)
                        return true
                    }
                    messages = list
                    return read
                default:
                    return false
                }
            }
            guard complete, scanner.isAtEnd, let threadId, let accountId, let messages else { return nil }
            return AddMessagesInput(threadId: threadId, accountId: accountId, messages: messages, commandId: commandId ?? nil)
        }
    }
}

extension ThreadQueryInput: QuickDecodableInput {
    /// get-thread's whole input is its parameters: `threadId` from the route,
    /// `accountId` and `minVersion` from the query string (or the token).
    static func quickDecode(body: Data, parameters: [String: String]) -> ThreadQueryInput? {
        guard body.isEmpty, let threadId = parameters["threadId"].flatMap(ThreadID.init),
            let accountId = parameters[Invocation.actingAccountField].flatMap(AccountID.init)
        else { return nil }
        guard let minVersion = parameters["minVersion"] else {
            return ThreadQueryInput(threadId: threadId, accountId: accountId, minVersion: nil)
        }
        guard let value = Int64(minVersion) else { return nil }
        return ThreadQueryInput(threadId: threadId, accountId: accountId, minVersion: QueryInteger(value))
    }
}

extension NewMessageInput {
    fileprivate static func quickDecode(_ scanner: inout JSONScanner) -> NewMessageInput? {
        var id: MessageID??
        var text: String?
        var replyTo: MessageID??
        var mentions: [AccountID]??
        let complete = scanner.object { key, scanner in
            switch key {
            case "text" where text == nil:
                text = scanner.string()
                return text != nil
            case "id" where id == nil:
                id = scanner.optionalID()
                return id != nil
            case "replyTo" where replyTo == nil:
                replyTo = scanner.optionalID()
                return replyTo != nil
            case "mentions" where mentions == nil:
                if scanner.null() {
                    mentions = .some(nil)
                    return true
                }
                var list: [AccountID] = []
                let read = scanner.array { scanner in
                    guard let id = scanner.string().flatMap(AccountID.init) else { return false }
                    list.append(id)
                    return true
                }
                mentions = list
                return read
            default:
                return false
            }
        }
        guard complete, let text else { return nil }
        return NewMessageInput(id: id ?? nil, text: text, replyTo: replyTo ?? nil, mentions: mentions ?? nil)
    }
}

/// Reads JSON (RFC 8259) from bytes, answering nil or false at the first
/// byte it does not expect.
struct JSONScanner {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    var isAtEnd: Bool {
        mutating get {
            skipWhiteSpace()
            return index == bytes.count
        }
    }

    /// An object, each key's value read by `field` (false stops the read).
    mutating func object(_ field: (String, inout JSONScanner) -> Bool) -> Bool {
        guard consume(UInt8(ascii: "{")) else { return false }
        if consume(UInt8(ascii: "}")) { return true }
        repeat {
            guard let key = string(), consume(UInt8(ascii: ":")), field(key, &self) else { return false }
        } while consume(UInt8(ascii: ","))
        return consume(UInt8(ascii: "}"))
    }

    /// An array, each element read by `element` (false stops the read).
    mutating func array(_ element: (inout JSONScanner) -> Bool) -> Bool {
        guard consume(UInt8(ascii: "[")) else { return false }
        if consume(UInt8(ascii: "]")) { return true }
        repeat {
            guard element(&self) else { return false }
        } while consume(UInt8(ascii: ","))
        return consume(UInt8(ascii: "]"))
    }

    mutating func null() -> Bool {
        skipWhiteSpace()
        guard bytes.count - index >= 4, bytes[index] == UInt8(ascii: "n"), bytes[index + 1] == UInt8(ascii: "u"),
            bytes[index + 2] == UInt8(ascii: "l"), bytes[index + 3] == UInt8(ascii: "l")
        else { return false }
        index += 4
        return true
    }

    /// An id or null: `.some(nil)` for null, nil when it is neither.
    mutating func optionalID() -> ULID?? {
        if null() { return .some(nil) }
        guard let id = string().flatMap(ULID.init) else { return nil }
        return id
    }

    /// A string, its escapes resolved; nil for anything else, a raw control
    /// character, an unpaired surrogate or bytes that are not UTF-8.
    mutating func string() -> String? {
        guard consume(UInt8(ascii: "\"")) else { return nil }
        let start = index
        // Fast path: no escape before the closing quote. ASCII needs no validation
        // (`String(validating:)` runs unspecialised: some 1,000 instructions a string).
        var ascii = true
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let raw = UnsafeBufferPointer(rebasing: bytes[start..<index])
                let text = ascii ? String(decoding: raw, as: UTF8.self) : String(validating: raw, as: UTF8.self)
                index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { return nil }
            if byte >= 0x80 { ascii = false }
            index += 1
        }
        var decoded = Array(bytes[start..<index])
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(validating: decoded, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { return nil }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
                case UInt8(ascii: "b"): decoded.append(0x08)
                case UInt8(ascii: "f"): decoded.append(0x0C)
                case UInt8(ascii: "n"): decoded.append(0x0A)
                case UInt8(ascii: "r"): decoded.append(0x0D)
                case UInt8(ascii: "t"): decoded.append(0x09)
                case UInt8(ascii: "u"):
                    guard let scalar = unicodeEscape() else { return nil }
                    decoded.append(contentsOf: String(Character(scalar)).utf8)
                default: return nil
                }
            default:
                if byte < 0x20 { return nil }
                decoded.append(byte)
            }
        }
        return nil
    }

    /// The scalar of `XXXX` after `\u`, or of a surrogate pair `\uD8xx\uDCxx`.
    private mutating func unicodeEscape() -> Unicode.Scalar? {
        guard let first = hexQuad() else { return nil }
        if (0xD800...0xDBFF).contains(first) {
            guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else { return nil }
            index += 2
            guard let second = hexQuad(), (0xDC00...0xDFFF).contains(second) else { return nil }
            return Unicode.Scalar(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
        }
        return Unicode.Scalar(first)
    }

    private mutating func hexQuad() -> UInt32? {
        guard bytes.count - index >= 4 else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        skipWhiteSpace()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    private mutating func skipWhiteSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }
}
