import Foundation
public import ReadModel
import ThreadDomain

/// The opaque `cursor`/`nextCursor` of list-threads and list-messages:
/// base64url (no padding) of a kind tag and the cursor's fields joined by
/// dots, so clients pass it back verbatim and never build one.
enum OpaqueCursor {
    static func encode(kind: String, _ fields: [String]) -> String {
        Data(([kind] + fields).joined(separator: ".").utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// The fields of a cursor of `kind` with `count` fields; nil for anything else.
    static func decode(_ text: String, kind: String, count: Int) -> [String]? {
        guard text.utf8.count <= 256,
            text.utf8.allSatisfy({ $0.isBase64URL })
        else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.utf8.count % 4) % 4)
        guard let data = Data(base64Encoded: base64), let plain = String(data: data, encoding: .utf8) else { return nil }
        let parts = plain.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == count + 1, parts[0] == kind else { return nil }
        return Array(parts.dropFirst())
    }
}

extension UInt8 {
    fileprivate var isBase64URL: Bool {
        switch self {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }
}

/// Where a paging of list-threads stands: the instant the whole paging
/// orders by (fixed by its first page) and the last thread given out.
public struct ThreadListCursor: Sendable, Hashable {
    public var instant: Int64
    public var position: ThreadListPosition

    public init(instant: Int64, position: ThreadListPosition) {
        self.instant = instant
        self.position = position
    }

    public var encoded: String {
        OpaqueCursor.encode(kind: "t1", [String(instant), String(position.lastActivityAt), position.threadId.rawValue])
    }

    public init(decoding text: String) throws(FunctionError) {
        guard let fields = OpaqueCursor.decode(text, kind: "t1", count: 3),
            let instant = Int64(fields[0]), instant >= 0,
            let lastActivityAt = Int64(fields[1]), lastActivityAt >= 0,
            let threadId = ThreadID(fields[2])
        else { throw FunctionError(.invalidRequest, "cursor is not a cursor list-threads gave out") }
        self.init(instant: instant, position: ThreadListPosition(lastActivityAt: lastActivityAt, threadId: threadId))
    }
}

/// Where a paging of list-messages stands: the timeline position of the
/// last message given out (still valid if that message is removed since).
public struct MessageListCursor: Sendable, Hashable {
    public var position: Int64

    public init(position: Int64) {
        self.position = position
    }

    public var encoded: String { OpaqueCursor.encode(kind: "m1", [String(position)]) }

    public init(decoding text: String) throws(FunctionError) {
        guard let fields = OpaqueCursor.decode(text, kind: "m1", count: 1), let position = Int64(fields[0]), position >= 0 else {
            throw FunctionError(.invalidRequest, "cursor is not a cursor list-messages gave out")
        }
        self.init(position: position)
    }
}
