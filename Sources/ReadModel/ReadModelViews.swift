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

    /// The fields of a view's hash that `read(_:)` asks for, in the order of its reply.
    static let hashFields = [
        "id", "creatorId", "parentThreadId", "title", "remarks", "createdAt", "updatedAt", "destroyedAt", "version",
        "administratorCount", "memberCount", "messageCount",
    ]

    /// `HMGET` of the view's fields: its reply holds the values alone, in a
    /// known order, where `HGETALL`'s held each name too (twice the strings
    /// for hiredis to allocate and for us to copy, and a name to match).
    static func read(_ key: String) -> RedisCommand {
        // Built from one list, so its buffers are sized once.
        RedisCommand(["HMGET", key] + hashFields)
    }

    /// True when the reply of `read(_:)` found no hash: every value null.
    static func isAbsent(_ reply: RedisValue) -> Bool {
        reply.array?.allSatisfy(\.isNull) ?? true
    }

    /// Nil for an absent or unreadable hash, from the reply of `read(_:)`.
    init?(values reply: RedisValue) {
        guard case .array(let values) = reply, values.count == Self.hashFields.count else { return nil }
        func text(_ index: Int) -> String? { values[index].string }
        guard let id = text(0).flatMap(ThreadID.init), let creatorId = text(1).flatMap(AccountID.init), let title = text(3),
            let createdAt = text(5).flatMap({ Int64($0) }), let updatedAt = text(6).flatMap({ Int64($0) }),
            let version = text(8).flatMap({ Int64($0) })
        else { return nil }
        self.id = id
        self.creatorId = creatorId
        self.parentThreadId = text(2).flatMap(ThreadID.init)
        self.title = title
        self.remarks = text(4)
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.destroyedAt = text(7).flatMap { Int64($0) }
        self.version = version
        self.administratorCount = text(9).flatMap { Int($0) } ?? 0
        self.memberCount = text(10).flatMap { Int($0) } ?? 0
        self.messageCount = text(11).flatMap { Int($0) } ?? 0
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
