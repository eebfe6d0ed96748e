/// Who watches which thread stream in one process, and from where each lane
/// must read next: the I/O-free core of the watch hub.
///
/// Every watched stream belongs to one lane (one blocking connection). A lane
/// reads each of its streams from that stream's cursor, which never passes
/// any of its subscribers' own cursors; a subscriber that resumes from an
/// older version lowers it, and the others skip what they already had. A read
/// that was issued before a cursor was lowered is delivered only to the
/// subscribers it leaves no gap for, so nobody misses or repeats an event.
struct WatchHubState<Sink> {
    typealias SubscriberID = Int

    private struct Subscriber {
        var key: String
        var lane: Int
        /// The last version this subscriber has (or skipped by resuming after it).
        var cursor: Int64
        var sink: Sink
        var lastDelivery: ContinuousClock.Instant
    }

    private struct WatchedStream {
        var subscribers: Set<SubscriberID> = []
        /// Where the lane reads this stream from next: at most every subscriber's cursor.
        var cursor: Int64
    }

    /// One stream to read: its key and the version to read after.
    struct Read: Hashable {
        var key: String
        var after: Int64
    }

    enum Subscribing {
        /// `wakeLane`: the lane's blocked read does not cover this yet, so wake it.
        case subscribed(SubscriberID, wakeLane: Bool)
        case shutDown
    }

    private var subscribers: [SubscriberID: Subscriber] = [:]
    private var lanes: [Int: [String: WatchedStream]] = [:]
    private var nextId: SubscriberID = 0
    private(set) var isShutDown = false

    var subscriberCount: Int { subscribers.count }

    mutating func subscribe(key: String, lane: Int, after: Int64, sink: Sink, now: ContinuousClock.Instant) -> Subscribing {
        guard !isShutDown else { return .shutDown }
        let id = nextId
        nextId += 1
        subscribers[id] = Subscriber(key: key, lane: lane, cursor: after, sink: sink, lastDelivery: now)
        var stream = lanes[lane]?[key] ?? WatchedStream(cursor: after)
        // A new stream, or one to read again from further back, is not in the blocked read.
        let wake = stream.subscribers.isEmpty || after < stream.cursor
        stream.cursor = min(stream.cursor, after)
        stream.subscribers.insert(id)
        lanes[lane, default: [:]][key] = stream
        return .subscribed(id, wakeLane: wake)
    }

    /// Forgets a subscriber; its sink, to be finished, if it was still here.
    mutating func unsubscribe(_ id: SubscriberID) -> Sink? {
        guard let subscriber = subscribers.removeValue(forKey: id) else { return nil }
        lanes[subscriber.lane]?[subscriber.key]?.subscribers.remove(id)
        if lanes[subscriber.lane]?[subscriber.key]?.subscribers.isEmpty == true {
            lanes[subscriber.lane]![subscriber.key] = nil
        }
        return subscriber.sink
    }

    /// What the lane's next `XREAD` covers, in key order.
    func reads(lane: Int) -> [Read] {
        (lanes[lane] ?? [:]).map { Read(key: $0.key, after: $0.value.cursor) }.sorted { $0.key < $1.key }
    }

    /// Entries read from `read.key` after `read.after` (in version order):
    /// each subscriber that has everything up to `read.after` gets the ones
    /// newer than its own cursor; the stream's cursor moves on unless it was
    /// lowered meanwhile.
    mutating func received<Entry>(
        _ entries: [(version: Int64, entry: Entry)], for read: Read, lane: Int, now: ContinuousClock.Instant
    ) -> [(sink: Sink, entries: [Entry])] {
        guard let last = entries.last?.version, let stream = lanes[lane]?[read.key] else { return [] }
        if stream.cursor == read.after { lanes[lane]![read.key]!.cursor = last }
        var deliveries: [(sink: Sink, entries: [Entry])] = []
        for id in stream.subscribers {
            guard var subscriber = subscribers[id], subscriber.cursor >= read.after, subscriber.cursor < last else { continue }
            let cursor = subscriber.cursor
            deliveries.append((subscriber.sink, entries.filter { $0.version > cursor }.map(\.entry)))
            subscriber.cursor = last
            subscriber.lastDelivery = now
            subscribers[id] = subscriber
        }
        return deliveries
    }

    /// The lane's subscribers that got nothing for `interval`: each gets a heartbeat now.
    mutating func heartbeatsDue(lane: Int, now: ContinuousClock.Instant, interval: Duration) -> [Sink] {
        var due: [Sink] = []
        for stream in (lanes[lane] ?? [:]).values {
            for id in stream.subscribers {
                guard let subscriber = subscribers[id], now - subscriber.lastDelivery >= interval else { continue }
                subscribers[id]!.lastDelivery = now
                due.append(subscriber.sink)
            }
        }
        return due
    }

    /// Ends every watch of one stream (its entries cannot be read): their sinks, to be finished.
    mutating func endStream(_ key: String, lane: Int) -> [Sink] {
        guard let stream = lanes[lane]?.removeValue(forKey: key) else { return [] }
        return stream.subscribers.compactMap { subscribers.removeValue(forKey: $0)?.sink }
    }

    /// The lane's connection failed: its watches end (their clients resume with `Last-Event-ID`).
    mutating func laneFailed(_ lane: Int) -> [Sink] {
        let keys = lanes.removeValue(forKey: lane) ?? [:]
        return keys.values.flatMap { $0.subscribers.compactMap { subscribers.removeValue(forKey: $0)?.sink } }
    }

    /// Refuses new subscribers from now on; every sink, to be finished.
    mutating func shutDown() -> [Sink] {
        isShutDown = true
        lanes = [:]
        defer { subscribers = [:] }
        return subscribers.values.map(\.sink)
    }
}
