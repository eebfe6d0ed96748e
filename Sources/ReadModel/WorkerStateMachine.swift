public import EventStore
public import RedisClient
public import ThreadDomain

/// A change-log entry as delivered to this consumer.
public struct DeliveredEntry: Sendable, Hashable {
    public var partition: Int
    public var id: String
    /// The entry's fields, flat (`name, value, …`), as stored: a dead letter keeps them unchanged.
    public var fields: [RedisValue]
    /// 1 for a first delivery; XAUTOCLAIM and redeliveries raise it.
    public var deliveryCount: Int

    public init(partition: Int, id: String, fields: [RedisValue], deliveryCount: Int) {
        self.partition = partition
        self.id = id
        self.fields = fields
        self.deliveryCount = deliveryCount
    }
}

/// The RMU worker's decisions, free of I/O so they are unit-tested alone:
/// what to do next (claim stale entries, read new ones, stop), what to do
/// with each delivered entry, and what to acknowledge after projecting.
public struct WorkerStateMachine: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// An entry delivered more often than this goes to the dead letters.
        public var maximumDeliveries: Int
        /// How often to look for entries other (dead) consumers left pending.
        public var claimInterval: Duration
        /// Entries per read; a read that brings fewer has caught up.
        public var batchSize: Int
        /// After a read that caught up, the next waits until this long after it
        /// returned. A blocking read wakes for the first entry of one log and
        /// returns that log's alone; each read costs Redis a pass over every log
        /// it names (64 on one node), so a short pause lets one round take what
        /// all of them gathered meanwhile. Zero: read again at once.
        public var gatherPause: Duration

        public init(
            maximumDeliveries: Int = 5, claimInterval: Duration = .seconds(15), batchSize: Int = 100,
            gatherPause: Duration = .milliseconds(2)
        ) {
            self.maximumDeliveries = max(1, maximumDeliveries)
            self.claimInterval = claimInterval
            self.batchSize = max(1, batchSize)
            self.gatherPause = gatherPause
        }
    }

    public enum Step: Sendable, Hashable {
        case claimStale
        /// Wait this long, then ask again.
        case pause(Duration)
        case readNew
        case stop
    }

    /// One delivered entry's fate.
    public enum Disposition: Sendable, Hashable {
        case project(threadId: ThreadID, event: StoredEvent)
        case deadLetter(reason: String)
    }

    public struct Projection: Sendable, Hashable {
        public var entry: DeliveredEntry
        public var threadId: ThreadID
        public var event: StoredEvent
    }

    public struct Plan: Sendable, Hashable {
        public var projections: [Projection] = []
        public var deadLetters: [DeadLetter] = []
    }

    /// What to write back once a plan's projections are done.
    public struct Settlement: Sendable, Hashable {
        /// The projections acknowledged, in the plan's order (the worker times each from its append).
        public var projected: [Projection] = []
        public var deadLetters: [DeadLetter] = []
        /// Entries whose thread failed to project: left pending, to be redelivered or claimed.
        public var leftPending: [DeliveredEntry] = []

        /// Entry ids to XACK, by partition: those of `projected`.
        public var acknowledgements: [Int: [String]] {
            Dictionary(grouping: projected.map(\.entry), by: \.partition).mapValues { $0.map(\.id) }
        }
    }

    public struct DeadLetter: Sendable, Hashable {
        public var entry: DeliveredEntry
        public var reason: String
    }

    public let configuration: Configuration
    public private(set) var isStopping = false
    private var lastClaim: ContinuousClock.Instant?
    private var nextRead: ContinuousClock.Instant?

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// Stop reading: the batch in hand is still finished and acknowledged.
    public mutating func requestStop() {
        isStopping = true
    }

    /// Claims first on start (a predecessor may have died with entries
    /// pending), then every `claimInterval`; reads new entries otherwise.
    public mutating func nextStep(now: ContinuousClock.Instant) -> Step {
        if isStopping { return .stop }
        if let lastClaim, now - lastClaim < configuration.claimInterval {
            if let nextRead, now < nextRead { return .pause(nextRead - now) }
            return .readNew
        }
        lastClaim = now
        return .claimStale
    }

    /// A read returned `count` entries at `now`. Fewer than a batch, but some:
    /// it caught up, and the next read gathers for `gatherPause`. None (the
    /// block timed out) or a full batch (a backlog): the next reads at once.
    public mutating func readReturned(_ count: Int, now: ContinuousClock.Instant) {
        nextRead = count > 0 && count < configuration.batchSize ? now + configuration.gatherPause : nil
    }

    /// Decides each entry's fate: too many deliveries or undecodable → dead
    /// letter; otherwise project.
    public func disposition(of entry: DeliveredEntry) -> Disposition {
        if entry.deliveryCount > configuration.maximumDeliveries {
            return .deadLetter(
                reason: "delivered \(entry.deliveryCount) times (maximum \(configuration.maximumDeliveries))")
        }
        do {
            let decoded = try StreamEntryDecoder.changeLogEntry(fields: entry.fields)
            return .project(threadId: decoded.threadId, event: decoded.event)
        } catch {
            return .deadLetter(reason: "undecodable: \(error.message)")
        }
    }

    public func plan(_ entries: [DeliveredEntry]) -> Plan {
        var plan = Plan()
        for entry in entries {
            switch disposition(of: entry) {
            case .project(let threadId, let event):
                plan.projections.append(Projection(entry: entry, threadId: threadId, event: event))
            case .deadLetter(let reason):
                plan.deadLetters.append(DeadLetter(entry: entry, reason: reason))
            }
        }
        return plan
    }

    /// Acknowledges what projected (applied or duplicate), dead-letters what
    /// the read model refused for good, and leaves the rest pending.
    public func settle(_ plan: Plan, outcomes: [ThreadID: Result<Projector.Report, ReadModelError>]) -> Settlement {
        var settlement = Settlement(deadLetters: plan.deadLetters)
        for projection in plan.projections {
            let entry = projection.entry
            switch outcomes[projection.threadId] {
            case .success(let report)?:
                if let reason = report.rejected[projection.event.version] {
                    settlement.deadLetters.append(DeadLetter(entry: entry, reason: "refused: \(reason)"))
                } else {
                    settlement.projected.append(projection)
                }
            case .failure?, nil:
                settlement.leftPending.append(entry)
            }
        }
        return settlement
    }
}
