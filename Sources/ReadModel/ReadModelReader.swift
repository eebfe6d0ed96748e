import Foundation
public import EventStore
public import Logging
public import RedisClient
public import ThreadDomain

/// The query side's access to the read model of DESIGN §3. Access rules
/// (participants only, destroyed threads) are the handlers' business; this
/// only reads.
public struct ReadModelReader: Sendable {
    /// How `waitForVersion` waits: for at most `timeout`, at most
    /// `maximumWaiters` requests at once, all served by one poller that
    /// ticks every `pollInterval` and reads, in one pipeline, the version of
    /// every thread with a wait due (each wait is checked after
    /// `pollInterval`, then after doubling pauses up to `longestPause`).
    /// A wait sees its version at most one pause after it lands, so the
    /// longest pause bounds what polling adds to read-your-writes latency;
    /// its price is one `HGET` per waiting request per pause, pipelined with
    /// every other wait due in the same tick.
    public struct WaitPolicy: Sendable, Hashable {
        public var timeout: Duration
        public var pollInterval: Duration
        public var longestPause: Duration
        public var maximumWaiters: Int

        public init(
            timeout: Duration = .seconds(5), pollInterval: Duration = .milliseconds(2), longestPause: Duration = .milliseconds(8),
            maximumWaiters: Int = 1_000
        ) {
            self.timeout = timeout
            self.pollInterval = pollInterval
            self.longestPause = longestPause
            self.maximumWaiters = maximumWaiters
        }
    }

    /// Threads per `tw_rm_activities_as_of` call: two keys each, far below Lua's stack limit.
    static let activityBatch = 256

    public var layout: KeyLayout { layouts.base }
    public let waitPolicy: WaitPolicy
    private let layouts: ReadModelLayouts
    private let redis: ReadModelRedis
    private let waits: VersionWaits

    /// Make one reader per process and share it: its `minVersion` waits are
    /// bounded and polled together. It reads the live read-model generation
    /// (and follows a `rebuild`'s switch).
    public init(redis: any RedisCommandExecutor, layout: KeyLayout, logger: Logger, waitPolicy: WaitPolicy = .init()) {
        self.waitPolicy = waitPolicy
        let redis = ReadModelRedis(redis, logger: logger)
        self.redis = redis
        let layouts = ReadModelLayouts.live(layout, redis: redis)
        self.layouts = layouts
        waits = VersionWaits(
            maximumWaiters: waitPolicy.maximumWaiters, pollInterval: waitPolicy.pollInterval, longestPause: waitPolicy.longestPause
        ) {
            (threads) throws(ReadModelError) -> [ThreadID: Int64] in
            let layout = try await layouts.current()
            let replies = try await redis.pipeline(threads.map { RedisCommand("HGET", layout.threadView($0), "version") })
            var versions: [ThreadID: Int64] = [:]
            for (thread, reply) in zip(threads, replies) { versions[thread] = reply.int.map(Int64.init) ?? 0 }
            return versions
        }
    }

    /// The version the read model holds for a thread (0: none yet).
    public func version(of threadId: ThreadID) async throws(ReadModelError) -> Int64 {
        let layout = try await layouts.current()
        let reply = try await redis.send(RedisCommand("HGET", layout.threadView(threadId), "version"))
        return reply.int.map(Int64.init) ?? 0
    }

    /// Waits until the read model holds at least `minVersion` of the thread:
    /// read-your-writes for a client that passes the version a command
    /// returned. Throws `.timeout` once `waitPolicy.timeout` has passed, and
    /// `.unavailable` when `waitPolicy.maximumWaiters` requests already wait.
    /// No thread is ever blocked: waiters sleep on continuations.
    public func waitForVersion(_ minVersion: Int64, of threadId: ThreadID) async throws(ReadModelError) {
        guard try await version(of: threadId) < minVersion else { return }
        try await waits.wait(until: minVersion, of: threadId, timeout: waitPolicy.timeout)
    }

    /// `minVersion` waits in progress, for metrics and tests.
    public var waitingCount: Int { waits.waiterCount }

    /// The thread and whether `accountId` takes part in it, in one round trip.
    public func access(_ threadId: ThreadID, for accountId: AccountID) async throws(ReadModelError) -> ThreadAccess {
        let keys = try await layouts.current().threadViewKeys(threadId)
        let replies = try await redis.pipeline([
            RedisCommand("HGETALL", keys.view),
            RedisCommand("HEXISTS", keys.administrators, accountId.rawValue),
            RedisCommand("HEXISTS", keys.members, accountId.rawValue),
        ])
        let isAbsent = replies[0].array?.isEmpty ?? true
        let thread = isAbsent ? nil : ThreadView(hash: replies[0])
        if !isAbsent, thread == nil {
            throw ReadModelError(.corruptData, "the read model of thread \(threadId) is unreadable")
        }
        return ThreadAccess(thread: thread, isParticipant: replies[1].int == 1 || replies[2].int == 1)
    }

    /// Administrators in join order (ties by account id).
    public func administrators(of threadId: ThreadID) async throws(ReadModelError) -> [ParticipantView] {
        try await participants(in: layouts.current().administratorsView(threadId))
    }

    /// Members in join order (ties by account id).
    public func members(of threadId: ThreadID) async throws(ReadModelError) -> [ParticipantView] {
        try await participants(in: layouts.current().membersView(threadId))
    }

    private func participants(in key: String) async throws(ReadModelError) -> [ParticipantView] {
        struct Entry: Decodable {
            var joinedAt: Int64
            var addedBy: AccountID
        }
        let fields = try await redis.send(RedisCommand("HGETALL", key)).fieldMap
        var participants: [ParticipantView] = []
        for (account, json) in fields {
            guard let accountId = AccountID(account), let entry = try? JSONDecoder().decode(Entry.self, from: Data(json.utf8))
            else { throw ReadModelError(.corruptData, "participant entry \(account) of \(key) is unreadable") }
            participants.append(ParticipantView(accountId: accountId, joinedAt: entry.joinedAt, addedBy: entry.addedBy))
        }
        return participants.sorted { ($0.joinedAt, $0.accountId) < ($1.joinedAt, $1.accountId) }
    }

    /// Up to `limit` live messages in timeline order, after the timeline
    /// position `after` (a page's `next`; from the start when nil). A position
    /// stays valid when its message is removed, so paging never breaks.
    public func messages(of threadId: ThreadID, after: Int64?, limit: Int) async throws(ReadModelError) -> MessagePage {
        let keys = try await layouts.current().threadViewKeys(threadId)
        let reply = try await redis.send(
            .fcallReadOnly(
                "tw_rm_page_messages", keys: [keys.timeline, keys.messages],
                arguments: [after.map(String.init) ?? "", String(limit)]))
        guard let parts = reply.array, parts.count == 2, let bodies = parts[0].array else {
            throw ReadModelError.unexpected(reply, in: "tw_rm_page_messages")
        }
        let next = parts[1].string.flatMap { Int64($0) }
        guard parts[1].isNull || next != nil else { throw ReadModelError.unexpected(reply, in: "tw_rm_page_messages") }
        let decoder = JSONDecoder()
        var messages: [MessageView] = []
        for body in bodies {
            // A message removed between the timeline read and the hash read cannot happen (one script), but skip a hole rather than fail.
            guard let bytes = body.bytes else { continue }
            do {
                messages.append(try decoder.decode(MessageView.self, from: Data(bytes)))
            } catch {
                throw ReadModelError(.corruptData, "a message of thread \(threadId) is unreadable", underlying: error)
            }
        }
        return MessagePage(messages: messages, next: next)
    }

    /// A page of the threads an account takes part in, ordered by their last
    /// activity as of `instant` (latest first, ties by the higher thread id),
    /// after `position` (from the top when nil). The account's index changes
    /// only with membership, so the order is computed here: one pipelined
    /// `ZMSCORE` per partition of the account's threads reads each thread's
    /// latest activity from the write side's activity index (which every
    /// append moves in the same step as the stream), then the page's views.
    /// A thread written since `instant`, or one missing from the index (last
    /// written before the index existed), is placed by its creation (the
    /// `createdAt` of its view, which no later event moves) when it was
    /// created after `instant`; otherwise `tw_rm_activities_as_of` walks its
    /// stream back to the instant. A thread whose view is not there yet is
    /// left out.
    /// Every page of one paging passes the same `instant`, so a thread's
    /// place is a function of its history up to that instant and stays put
    /// however active it is meanwhile: a paging lists each thread the account
    /// stays in exactly once.
    public func threads(
        of accountId: AccountID, asOf instant: Int64, after position: ThreadListPosition?, limit: Int
    ) async throws(ReadModelError) -> ThreadListing {
        let layout = try await layouts.current()
        let members = try await redis.send(RedisCommand("ZRANGE", layout.accountThreads(accountId), "0", "-1"))
        let threadIds = (members.array ?? []).compactMap { $0.string.flatMap(ThreadID.init) }
        // A command's keys must share a slot: one ZMSCORE per partition.
        let partitions = Array(Dictionary(grouping: threadIds, by: layout.partition(of:)).values)
        let scores = try await redis.pipeline(
            partitions.map { threads in
                RedisCommand(["ZMSCORE", layout.activityIndex(of: threads[0])] + threads.map(\.rawValue))
            })
        var activityOf: [ThreadID: Int64] = [:]
        var writtenSince: [ThreadID] = []
        for (threads, reply) in zip(partitions, scores) {
            let values = reply.array ?? []
            for (index, threadId) in threads.enumerated() {
                let latest = index < values.count ? values[index].string.flatMap(Double.init).map { Int64($0) } : nil
                if let latest, latest <= instant {
                    activityOf[threadId] = latest
                } else {
                    writtenSince.append(threadId)
                }
            }
        }
        // Most threads written since the instant were created since (a burst
        // of new threads): their creation places them without a walk.
        let created = try await creationTimes(of: writtenSince, layout: layout)
        var walkBack: [ThreadID] = []
        for threadId in writtenSince {
            // No view yet: left out, as on the page.
            guard let createdAt = created[threadId] else { continue }
            if createdAt > instant {
                activityOf[threadId] = createdAt
            } else {
                walkBack.append(threadId)
            }
        }
        activityOf.merge(try await activities(of: walkBack, asOf: instant, layout: layout)) { $1 }
        let ordered = activityOf
            .map { ThreadListPosition(lastActivityAt: $0.value, threadId: $0.key) }
            .filter { place in position.map { place > $0 } ?? true }
            .sorted()
        let page = Array(ordered.prefix(limit))
        let views = try await redis.pipeline(page.map { RedisCommand("HGETALL", layout.threadView($0.threadId)) })
        var threads: [ListedThread] = []
        for (place, reply) in zip(page, views) {
            // A listed thread whose view is missing (not yet projected) is left out, not failed.
            guard let view = ThreadView(hash: reply) else { continue }
            threads.append(ListedThread(thread: view, lastActivityAt: place.lastActivityAt))
        }
        return ThreadListing(threads: threads, total: threadIds.count, next: ordered.count > limit ? page.last : nil)
    }

    /// When each thread was created, from its view (`HGET createdAt`, pipelined):
    /// threads whose view is not there yet are left out.
    private func creationTimes(of threadIds: [ThreadID], layout: KeyLayout) async throws(ReadModelError) -> [ThreadID: Int64] {
        guard !threadIds.isEmpty else { return [:] }
        let replies = try await redis.pipeline(threadIds.map { RedisCommand("HGET", layout.threadView($0), "createdAt") })
        var created: [ThreadID: Int64] = [:]
        for (threadId, reply) in zip(threadIds, replies) { created[threadId] = reply.string.flatMap { Int64($0) } }
        return created
    }

    /// Each thread's activity as of `instant` read from its stream
    /// (`tw_rm_activities_as_of`): one call per partition, up to
    /// `activityBatch` threads a call, all pipelined. Threads with none by
    /// then are left out.
    private func activities(
        of threadIds: [ThreadID], asOf instant: Int64, layout: KeyLayout
    ) async throws(ReadModelError) -> [ThreadID: Int64] {
        guard !threadIds.isEmpty else { return [:] }
        // A call's keys must share a slot: group by partition, in batches that keep a call short.
        let batches = Dictionary(grouping: threadIds, by: layout.partition(of:)).values.flatMap { partition in
            stride(from: 0, to: partition.count, by: Self.activityBatch).map {
                Array(partition[$0..<min($0 + Self.activityBatch, partition.count)])
            }
        }
        let replies = try await redis.pipeline(
            batches.map { batch in
                RedisCommand.fcallReadOnly(
                    "tw_rm_activities_as_of", keys: batch.flatMap { [layout.threadView($0), layout.threadStream($0)] },
                    arguments: [String(instant)])
            })
        var activities: [ThreadID: Int64] = [:]
        for (batch, reply) in zip(batches, replies) {
            for (threadId, activity) in zip(batch, reply.array ?? []) { activities[threadId] = activity.int.map(Int64.init) }
        }
        return activities
    }
}
