import Foundation
import RedisClient
public import ThreadDomain

/// A thread as the read model holds it (`tw:{pNN}:rm:thread:<id>`).
public struct ThreadView: Sendable, Hashable, Codable, CanonicalJSONWritable {
    public var id: ThreadID
    public var creatorId: AccountID
    public var parentThreadId: ThreadID?
    public var title: String
    public var remarks: String?
    public var createdAt: Int64
    public var updatedAt: Int64
    public var destroyedAt: Int64?
    /// The last event applied: the response's `ETag`, and what `minVersion` waits for.
    public var version: Int64
    public var administratorCount: Int
    public var memberCount: Int
    public var messageCount: Int

    public var isDestroyed: Bool { destroyedAt != nil }

    /// get-thread's answer, the one read on every query: written by hand (keys sorted).
    public func write(to writer: inout CanonicalJSONWriter) {
        writer.beginObject()
        writer.key("administratorCount")
        writer.integer(administratorCount)
        writer.key("createdAt")
        writer.integer(createdAt)
        writer.key("creatorId")
        writer.string(creatorId.rawValue)
        writer.field("destroyedAt", destroyedAt)
        writer.key("id")
        writer.string(id.rawValue)
        writer.key("memberCount")
        writer.integer(memberCount)
        writer.key("messageCount")
        writer.integer(messageCount)
        writer.field("parentThreadId", parentThreadId?.rawValue)
        writer.field("remarks", remarks)
        writer.key("title")
        writer.string(title)
        writer.key("updatedAt")
        writer.integer(updatedAt)
        writer.key("version")
        writer.integer(version)
        writer.endObject()
    }

    /// Nil for an absent or unreadable hash. Read in one pass over `HGETALL`'s
    /// flat reply: a dictionary of the fields first hashed every name twice.
    init?(hash reply: RedisValue) {
        guard case .array(let flat) = reply else { return nil }
        var id: ThreadID?
        var creatorId: AccountID?
        var title: String?
        var createdAt: Int64?
        var updatedAt: Int64?
        var version: Int64?
        administratorCount = 0
        memberCount = 0
        messageCount = 0
        var index = 0
        while index + 1 < flat.count {
            defer { index += 2 }
            guard let name = flat[index].string, let value = flat[index + 1].string else { continue }
            switch name {
            case "id": id = ThreadID(value)
            case "creatorId": creatorId = AccountID(value)
            case "parentThreadId": parentThreadId = ThreadID(value)
            case "title": title = value
            case "remarks": remarks = value
            case "createdAt": createdAt = Int64(value)
            case "updatedAt": updatedAt = Int64(value)
            case "destroyedAt": destroyedAt = Int64(value)
            case "version": version = Int64(value)
            case "administratorCount": administratorCount = Int(value) ?? 0
            case "memberCount": memberCount = Int(value) ?? 0
            case "messageCount": messageCount = Int(value) ?? 0
            default: break
            }
        }
        guard let id, let creatorId, let title, let createdAt, let updatedAt, let version else { return nil }
        self.id = id
        self.creatorId = creatorId
        self.title = title
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.version = version
    }
}

/// An administrator or member: who, since when, added by whom.
public struct ParticipantView: Sendable, Hashable, Codable {
    public var accountId: AccountID
    public var joinedAt: Int64
    public var addedBy: AccountID
}

/// A live message (removed ones are gone from the read model).
public struct MessageView: Sendable, Hashable, Codable {
    public var id: MessageID
    public var senderId: AccountID
    public var text: String
    public var replyTo: MessageID?
    public var mentions: [AccountID]
    public var createdAt: Int64
}

/// One page of a thread's timeline.
public struct MessagePage: Sendable, Hashable {
    public var messages: [MessageView]
    /// The timeline position of the page's last message, to page on from;
    /// nil on the last page.
    public var next: Int64?
}

/// A thread in an account's list, with its last activity as of the listing's instant.
public struct ListedThread: Sendable, Hashable {
    public var thread: ThreadView
    public var lastActivityAt: Int64
}

/// A place in an account's thread list: latest activity first, ties by the
/// higher thread id first. A page lists the threads strictly after one.
public struct ThreadListPosition: Sendable, Hashable, Comparable {
    public var lastActivityAt: Int64
    public var threadId: ThreadID

    public init(lastActivityAt: Int64, threadId: ThreadID) {
        self.lastActivityAt = lastActivityAt
        self.threadId = threadId
    }

    /// Whether `lhs` comes first in the list.
    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.lastActivityAt, lhs.threadId.rawValue) > (rhs.lastActivityAt, rhs.threadId.rawValue)
    }
}

public struct ThreadListing: Sendable, Hashable {
    public var threads: [ListedThread]
    /// How many threads the account takes part in, across all pages.
    public var total: Int
    /// The page's last place when more threads follow it; nil on the last page.
    public var next: ThreadListPosition?
}

/// What a query needs before answering: the thread (nil when the read model
/// has none) and whether the asking account takes part in it.
public struct ThreadAccess: Sendable, Hashable {
    public var thread: ThreadView?
    public var isParticipant: Bool
}
