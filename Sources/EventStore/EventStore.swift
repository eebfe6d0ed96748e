public import ThreadDomain

/// Where a thread's events live. `RedisEventStore` is the real one;
/// `InMemoryEventStore` serves tests of the layers above, and one test suite
/// runs against both so they cannot drift apart.
public protocol EventStore: Sendable {
    /// The decision state of a thread: `base` plus the events after it (or the
    /// snapshot plus the events after that when `base` is nil), with the
    /// write-side records of `messageIds` merged in. When `commandId` is given,
    /// an unexpired idempotency record for it comes back too.
    func load(
        _ threadId: ThreadID, since base: ThreadState?, messageIds: [MessageID], commandId: String?
    ) async throws(EventStoreError) -> LoadedThread

    /// Appends `request.events` if the thread is still at `request.expectedVersion`.
    func append(_ request: AppendRequest) async throws(EventStoreError) -> AppendOutcome

    /// Recorded events with a version greater than `version`, oldest first.
    func events(of threadId: ThreadID, after version: Int64, limit: Int) async throws(EventStoreError) -> [RecordedEvent]
}

public struct LoadedThread: Sendable, Hashable {
    /// Nil when the thread has no events.
    public var state: ThreadState?
    public var version: Int64 { state?.version ?? 0 }
    /// Events applied on top of the base or snapshot by this load.
    public var eventsReplayed: Int
    public var previousOutcome: IdempotencyRecord?

    public init(state: ThreadState?, eventsReplayed: Int, previousOutcome: IdempotencyRecord?) {
        self.state = state
        self.eventsReplayed = eventsReplayed
        self.previousOutcome = previousOutcome
    }
}

/// The first outcome of a command, kept 24 hours under its idempotency key.
public struct IdempotencyRecord: Sendable, Hashable {
    public var version: Int64
    /// Whatever the caller asked to keep (e.g. the message ids it answered).
    public var result: String
    /// A digest of the request, so a reused key with another request is refused.
    public var fingerprint: String

    public init(version: Int64, result: String, fingerprint: String) {
        self.version = version
        self.result = result
        self.fingerprint = fingerprint
    }
}

/// One append: the events of one or more commands (group commit), in order,
/// at consecutive versions after `expectedVersion`, in one atomic step.
public struct AppendRequest: Sendable, Hashable {
    public struct Idempotency: Sendable, Hashable {
        public var fingerprint: String
        public var result: String
        public var timeToLiveSeconds: Int

        public init(fingerprint: String, result: String, timeToLiveSeconds: Int = 86_400) {
            self.fingerprint = fingerprint
            self.result = result
            self.timeToLiveSeconds = timeToLiveSeconds
        }
    }

    /// One command's part of an append: its events, recorded under its own id and actor.
    public struct Command: Sendable, Hashable {
        public var commandId: String
        public var actor: AccountID
        /// Not empty: a command without events has nothing to append.
        public var events: [ThreadEvent]
        /// Nil: keep no idempotency record (the client sent no key).
        public var idempotency: Idempotency?

        public init(commandId: String, actor: AccountID, events: [ThreadEvent], idempotency: Idempotency?) {
            self.commandId = commandId
            self.actor = actor
            self.events = events
            self.idempotency = idempotency
        }
    }

    public var threadId: ThreadID
    public var expectedVersion: Int64
    /// Not empty, in the order their events are recorded.
    public var commands: [Command]
    /// Unix milliseconds, recorded on every event of the append.
    public var at: Int64
    /// The caller decided these events at `expectedVersion` and they only add
    /// messages: the store may append them after later events that also only
    /// add messages (at most `AppendRequest.rebaseLimit` of them), instead of
    /// answering `conflict`. Messages commute: the later events change neither
    /// who takes part, nor whether the thread lives, nor whether any message
    /// does. The outcome's version then says where they landed. Whether at
    /// `expectedVersion` or after, the store answers `conflict` when one of
    /// their message ids is taken, so a caller may decide posts without
    /// loading the message index.
    public var mayFollowMessages: Bool
    /// The decision state after these events, kept as the thread's snapshot
    /// (its messages left out) in the same atomic step, but only when the
    /// append lands where it was decided: at `expectedVersion`, its version
    /// `expectedVersion + eventCount`, and newer than the stored snapshot. So a
    /// snapshot costs no round trip of its own, and a caller's answer never
    /// waits on one.
    public var snapshot: ThreadState?

    public init(
        threadId: ThreadID, expectedVersion: Int64, commands: [Command], at: Int64, mayFollowMessages: Bool = false,
        snapshot: ThreadState? = nil
    ) {
        self.threadId = threadId
        self.expectedVersion = expectedVersion
        self.commands = commands
        self.at = at
        self.mayFollowMessages = mayFollowMessages
        self.snapshot = snapshot
    }

    /// The version the append ends at when it lands where it was decided.
    public var decidedVersion: Int64 { expectedVersion + Int64(eventCount) }

    /// The most later events an append with `mayFollowMessages` lands after
    /// (`REBASE_LIMIT` of the `threadweave` library).
    public static let rebaseLimit = 256

    /// True when every event of the append adds messages.
    public var addsMessagesOnly: Bool {
        commands.allSatisfy { $0.events.allSatisfy(\.addsMessagesOnly) }
    }

    /// The append of one command.
    public init(
        threadId: ThreadID, expectedVersion: Int64, events: [ThreadEvent], actor: AccountID,
        commandId: String, at: Int64, idempotency: Idempotency?
    ) {
        self.init(
            threadId: threadId, expectedVersion: expectedVersion,
            commands: [Command(commandId: commandId, actor: actor, events: events, idempotency: idempotency)], at: at)
    }

    /// How many events the append records.
    public var eventCount: Int { commands.reduce(0) { $0 + $1.events.count } }

    /// The events as they are recorded when the append succeeds after `base`.
    public func recordedEvents(after base: Int64) -> [RecordedEvent] {
        var version = base
        return commands.flatMap { command in
            command.events.map { event in
                version += 1
                return RecordedEvent(version: version, at: at, actor: command.actor, commandId: command.commandId, event: event)
            }
        }
    }
}

public enum AppendOutcome: Sendable, Hashable {
    case appended(version: Int64)
    /// The thread had moved on: nothing was written.
    case conflict(actualVersion: Int64)
    /// The idempotency key of `commands[command]` was seen before with the same
    /// request: nothing was written (the other commands may be sent again).
    case duplicate(IdempotencyRecord, command: Int = 0)
    /// The idempotency key of `commands[command]` was used before for a
    /// different request: nothing was written.
    case reused(command: Int = 0)
}

/// Failures of the store itself (not of the rules): an opaque code, a message
/// safe to show, and the underlying error for the logs.
public struct EventStoreError: ExplainedError, Sendable {
    public enum Code: String, Hashable, Sendable, CustomStringConvertible {
        /// Redis could not be reached or did not answer in time; nothing is known to be written.
        case unavailable
        /// Stored data could not be read back (undecodable entry or snapshot).
        case corruptData = "corrupt_data"
        /// The idempotency key was used before for a different request.
        case idempotencyKeyReused = "idempotency_key_reused"
        /// Redis answered something this code does not expect.
        case unexpectedReply = "unexpected_reply"

        public var description: String { rawValue }
    }

    public var code: Code
    public var message: String
    public var underlying: (any Error)?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }
}
