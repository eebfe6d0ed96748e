import Foundation
public import EventStore
public import Logging
public import RedisClient
import Synchronization

/// Which read-model keys to use. `<ns>:config` names the live generation
/// (`readModel`, absent: 0) and, while `rebuild` builds the next one,
/// that one too (`readModelNext`): readers read the live generation, workers
/// write both, so the next one misses nothing written during the rebuild.
/// Processes re-read the config at most once per `refreshInterval`, on use.
struct ReadModelLayouts: Sendable {
    /// How stale a process's idea of the generations may be: `rebuild` waits
    /// longer than this after each change before relying on it.
    static let refreshInterval: Duration = .seconds(1)
    static let liveField = "readModel"
    static let nextField = "readModelNext"

    private enum Source: Sendable {
        case fixed(KeyLayout)
        case live(LiveGenerations)
    }

    private let source: Source

    /// One generation, whatever the config says: what `rebuild` writes.
    static func fixed(_ layout: KeyLayout) -> Self { Self(source: .fixed(layout)) }

    static func live(_ base: KeyLayout, redis: ReadModelRedis) -> Self {
        Self(source: .live(LiveGenerations(base: base, redis: redis)))
    }

    var base: KeyLayout {
        switch source {
        case .fixed(let layout): layout
        case .live(let live): live.base
        }
    }

    /// The generation to read.
    func current() async throws(ReadModelError) -> KeyLayout {
        try await targets()[0]
    }

    /// The generations to write: the live one first, then the one a rebuild is building.
    func targets() async throws(ReadModelError) -> [KeyLayout] {
        switch source {
        case .fixed(let layout): [layout]
        case .live(let live): try await live.layouts()
        }
    }

    /// The live generation and the one being built, as the config names them now.
    static func generations(of layout: KeyLayout, redis: ReadModelRedis) async throws(ReadModelError) -> (live: Int, next: Int?) {
        let reply = try await redis.send(RedisCommand("HMGET", layout.config, liveField, nextField))
        guard let fields = reply.array, fields.count == 2 else { throw ReadModelError.unexpected(reply, in: "HMGET") }
        func generation(_ value: RedisValue) throws(ReadModelError) -> Int? {
            if value.isNull { return nil }
            guard let generation = value.string.flatMap(Int.init), generation >= 0 else {
                throw ReadModelError(.corruptData, "\(layout.config) names no valid read-model generation")
            }
            return generation
        }
        return (try generation(fields[0]) ?? 0, try generation(fields[1]))
    }
}

private final class LiveGenerations: Sendable {
    let base: KeyLayout
    private let redis: ReadModelRedis
    private let known = Mutex<(layouts: [KeyLayout], readAt: ContinuousClock.Instant)?>(nil)

    init(base: KeyLayout, redis: ReadModelRedis) {
        self.base = base
        self.redis = redis
    }

    func layouts() async throws(ReadModelError) -> [KeyLayout] {
        let now = ContinuousClock.now
        if let known = known.withLock({ $0 }), now - known.readAt < ReadModelLayouts.refreshInterval { return known.layouts }
        let (live, next) = try await ReadModelLayouts.generations(of: base, redis: redis)
        let layouts = [base.generation(live)] + (next.flatMap { $0 == live ? nil : [base.generation($0)] } ?? [])
        known.withLock { $0 = (layouts, now) }
        return layouts
    }
}

extension KeyLayout {
    /// This layout naming the read-model generation live now, as `<ns>:config` says.
    public func liveReadModel(on redis: any RedisCommandExecutor, logger: Logger) async throws(ReadModelError) -> KeyLayout {
        generation(try await ReadModelLayouts.generations(of: self, redis: ReadModelRedis(redis, logger: logger)).live)
    }

    /// A read-model key of this layout's generation named as generation 0
    /// would name it: for comparing two generations key by key.
    public func withoutGeneration(_ key: String) -> String {
        readModelGeneration == 0 ? key : key.replacingOccurrences(of: "}:g\(readModelGeneration):", with: "}:")
    }
}
