public import ThreadDomain

/// The Redis key layout of DESIGN §2 and §3, in one place. Every key of one
/// thread carries the thread's partition hash tag (`{p07}`), so a server-side
/// function that touches them together stays single-slot on Redis Cluster.
public struct KeyLayout: Sendable, Hashable {
    public static let defaultNamespace = "tw"
    public static let defaultPartitionCount = 64

    public var namespace: String
    public var partitionCount: Int
    /// Which generation of read-model keys this layout names: `rebuild`
    /// builds generation n + 1 beside the live n, then switches (0 is the
    /// unnumbered first one). The write side's keys have no generation.
    public var readModelGeneration = 0

    public init(namespace: String = KeyLayout.defaultNamespace, partitionCount: Int = KeyLayout.defaultPartitionCount) {
        precondition(partitionCount > 0, "partition count must be positive")
        self.namespace = namespace
        self.partitionCount = partitionCount
    }

    public var allPartitions: Range<Int> { 0..<partitionCount }

    /// 1–64 characters of `A–Z a–z 0–9 _ . -`. The namespace prefixes every
    /// key and `rebuild` finds keys by SCAN patterns built from it, so a glob
    /// character (`*`, `?`, `[`) would match, and drop, other namespaces' keys.
    public static func isValidNamespace(_ namespace: String) -> Bool {
        (1...64).contains(namespace.utf8.count)
            && namespace.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
                    true
                default:
                    false
                }
            }
    }

    /// `fnv1a32(threadId) mod P`.
    public func partition(of threadId: ThreadID) -> Int {
        // Over the contiguous bytes: through `String.UTF8View`'s iterator it cost
        // 800 instructions an id, and a post computes six keys (callgrind).
        var id = threadId.rawValue
        return Int(id.withUTF8 { fnv1a32($0) } % UInt32(partitionCount))
    }

    /// `{p07}`: the partition number, at least two digits.
    public func hashTag(partition: Int) -> String {
        partition < 10 ? "{p0\(partition)}" : "{p\(partition)}"
    }

    private func prefix(_ threadId: ThreadID) -> String {
        namespace + ":" + hashTag(partition: partition(of: threadId))
    }

    // MARK: Write side

    public var config: String { "\(namespace):config" }
    public func threadStream(_ threadId: ThreadID) -> String { prefix(threadId) + ":thread:" + threadId.rawValue }
    public func snapshot(_ threadId: ThreadID) -> String { prefix(threadId) + ":snap:" + threadId.rawValue }
    public func messageIndex(_ threadId: ThreadID) -> String { prefix(threadId) + ":msgidx:" + threadId.rawValue }
    public func idempotencyRecord(_ threadId: ThreadID, commandId: String) -> String {
        "\(prefix(threadId)):idem:\(threadId):\(commandId)"
    }
    /// The thread id reserved for a create-thread retried without a client-chosen id.
    /// Scoped and tagged by the account: one account's keys never collide with
    /// another's, and reservations spread over slots like accounts do.
    public func createReservation(account: AccountID, idempotencyKey: String) -> String {
        "\(namespace):{acct:\(account)}:create:\(idempotencyKey)"
    }
    public func changeLog(partition: Int) -> String { "\(namespace):\(hashTag(partition: partition)):log" }
    public func changeLog(of threadId: ThreadID) -> String { changeLog(partition: partition(of: threadId)) }
    public func deadLetters(partition: Int) -> String { "\(namespace):\(hashTag(partition: partition)):dead" }
    /// The partition's threads scored by the `at` of their latest event,
    /// written by every append: what list-threads orders by.
    public func activityIndex(partition: Int) -> String { "\(namespace):\(hashTag(partition: partition)):activity" }
    public func activityIndex(of threadId: ThreadID) -> String { activityIndex(partition: partition(of: threadId)) }

    // MARK: Read side

    /// `:g<n>` after the hash tag for generation n > 0, so every generation
    /// keeps each key in the slot of its thread or account.
    private var generationSegment: String { readModelGeneration == 0 ? "" : ":g\(readModelGeneration)" }
    public func threadView(_ threadId: ThreadID) -> String { prefix(threadId) + generationSegment + ":rm:thread:" + threadId.rawValue }
    /// The thread view's key and its siblings' keys, which all extend it: callers
    /// that need several build the stem once.
    public func threadViewKeys(_ threadId: ThreadID) -> ThreadViewKeys { ThreadViewKeys(view: threadView(threadId)) }
    public func administratorsView(_ threadId: ThreadID) -> String { threadViewKeys(threadId).administrators }
    public func membersView(_ threadId: ThreadID) -> String { threadViewKeys(threadId).members }
    public func messagesView(_ threadId: ThreadID) -> String { threadViewKeys(threadId).messages }
    public func timelineView(_ threadId: ThreadID) -> String { threadViewKeys(threadId).timeline }
    public func accountThreads(_ accountId: AccountID) -> String { "\(namespace):{acct:\(accountId)}\(generationSegment):threads" }
    /// The highest thread version that touched each entry of `accountThreads`.
    public func accountThreadVersions(_ accountId: AccountID) -> String { "\(accountThreads(accountId)):versions" }
}

/// One thread's read-model keys, each the thread view's key plus a suffix.
public struct ThreadViewKeys: Sendable, Hashable {
    public let view: String
    public var administrators: String { view + ":administrators" }
    public var members: String { view + ":members" }
    public var messages: String { view + ":messages" }
    public var timeline: String { view + ":timeline" }
    /// Account-index operations the thread still owes its participants.
    public var accountOutbox: String { view + ":accounts" }
}

/// 32-bit FNV-1a, the partitioning hash of DESIGN §2.
public func fnv1a32(_ bytes: some Sequence<UInt8>) -> UInt32 {
    var hash: UInt32 = 0x811c_9dc5
    for byte in bytes {
        hash ^= UInt32(byte)
        hash = hash &* 0x0100_0193
    }
    return hash
}
