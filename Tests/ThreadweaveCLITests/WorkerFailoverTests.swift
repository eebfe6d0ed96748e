import EventStore
import Foundation
import Logging
import ReadModel
import RedisClient
import RedisTestSupport
import Testing
import ThreadDomain
import ThreadFunctions

/// DESIGN §3 with real processes: a `threadweave worker` is SIGKILLed while it
/// holds pending entries; a second worker claims them, and the read model ends
/// exactly as a full rebuild makes it — nothing missing, nothing applied twice.
@Suite(.serialized, .timeLimit(.minutes(3))) struct WorkerFailoverTests {
    let logger: Logger = {
        var logger = Logger(label: "cli-failover-test")
        logger.logLevel = .warning
        return logger
    }()

    @Test func aKilledWorkersPendingEntriesAreClaimedAndTheReadModelEqualsARebuild() async throws {
        let layout = KeyLayout(namespace: TestRedis.uniqueNamespace("failover"), partitionCount: 4)
        try await withPool { pool in
            _ = try await StoreSetup.run(on: pool, layout: layout, libraries: StoreSetup.Library.all)
            let runner = CommandRunner(store: RedisEventStore(redis: pool, layout: layout, logger: logger), logger: logger)
            let admin = ULID.generate()
            let member = ULID.generate()

            // A backlog for the first worker: 30 threads × (create + 10 message events).
            var messagesWritten: [ThreadID: Int] = [:]
            for _ in 0..<30 {
                let thread = ULID.generate()
                _ = try await runner.run(CommandRequest(
                    threadId: thread,
                    command: .createThread(CreateThread(threadId: thread, creatorId: admin, title: "failover", memberIds: [member])),
                    actor: admin))
                for index in 0..<10 {
                    _ = try await runner.run(CommandRequest(
                        threadId: thread, command: .addMessages([NewMessage(id: .generate(), text: "m\(index)")]),
                        actor: index.isMultiple(of: 2) ? admin : member))
                }
                messagesWritten[thread] = 10
            }

            let first = try ThreadweaveChild(workerArguments(layout, consumer: "worker-a"))
            defer { first.signal(SIGKILL) }
            // Pending > 0 at the kill is made sure of, not hoped for: the worker
            // is frozen (SIGSTOP) while its pending count is read, and killed
            // only when it holds some; otherwise it is resumed and caught later.
            var pendingAtKill = 0
            let deadline = ContinuousClock.now + .seconds(30)
            while pendingAtKill == 0, ContinuousClock.now < deadline, first.isRunning {
                first.signal(SIGSTOP)
                pendingAtKill = try await pending(of: "worker-a", layout, pool)
                if pendingAtKill > 0 {
                    first.signal(SIGKILL)
                } else {
                    first.signal(SIGCONT)
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            try #require(pendingAtKill > 0, "the first worker was never caught holding pending entries")
            _ = await first.waitForExit()
            #expect(!first.isRunning)
            #expect(try await pending(of: "worker-a", layout, pool) == pendingAtKill, "a killed worker acks nothing more")

            // More events after the failure, for the second worker to read as new.
            for thread in messagesWritten.keys.prefix(5) {
                _ = try await runner.run(CommandRequest(
                    threadId: thread, command: .addMessages([NewMessage(id: .generate(), text: "after the kill")]), actor: admin))
                messagesWritten[thread, default: 0] += 1
            }

            let second = try ThreadweaveChild(workerArguments(layout, consumer: "worker-b"))
            defer { second.signal(SIGKILL) }
            var settled = false
            while !settled, ContinuousClock.now < deadline + .seconds(30) {
                try await Task.sleep(for: .milliseconds(100))
                let groups = try await groupState(layout, pool)
                settled = groups.lag == 0 && groups.pending == 0
            }
            #expect(settled, "the second worker acknowledged everything, the claimed entries included")
            #expect(try await pending(of: "worker-a", layout, pool) == 0, "the dead consumer's entries were claimed")
            await second.stop()

            // Nothing missing, nothing applied twice: per-thread counts, then the whole model against a rebuild.
            let reader = ReadModelReader(redis: pool, layout: layout, logger: logger)
            for (thread, messages) in messagesWritten {
                let view = try #require(try await reader.access(thread, for: admin).thread)
                #expect(view.version == Int64(1 + messages), "\(thread)")
                #expect(view.messageCount == messages, "\(thread)")
                let streamLength = try await pool.send(RedisCommand("XLEN", layout.threadStream(thread))).int
                #expect(streamLength == 1 + messages)
            }
            let projected = try await dumpReadModel(layout, pool)
            _ = try await ReadModelRebuilder(redis: pool, layout: layout, logger: logger).rebuild()
            let rebuilt = try await dumpReadModel(layout, pool)
            #expect(projected.count == rebuilt.count)
            for (key, value) in rebuilt where projected[key] != value {
                Issue.record("\(key) differs from the rebuild:\nworkers: \(projected[key] ?? "missing")\nrebuild: \(value)")
            }
        }
    }

    /// Small batches keep the first worker busy long enough to be caught; a
    /// one-second claim idle time lets the second take over quickly.
    private func workerArguments(_ layout: KeyLayout, consumer: String) -> [String] {
        [
            "worker", "--redis-url", TestRedis.url, "--namespace", layout.namespace, "--consumer", consumer,
            "--batch-size", "3", "--block-milliseconds", "100", "--claim-idle-seconds", "1", "--log-level", "error",
            "--host", "127.0.0.1", "--port", "0",
        ]
    }

    /// Entries delivered to `consumer` and not acknowledged, over every partition.
    private func pending(of consumer: String, _ layout: KeyLayout, _ pool: RedisConnectionPool) async throws -> Int {
        var total = 0
        for partition in layout.allPartitions {
            // Summary form: [count, smallest, largest, [[consumer, count], …]].
            let summary = try await pool.send(RedisCommand("XPENDING", layout.changeLog(partition: partition), StoreSetup.consumerGroup))
            for pair in summary.array?.last?.array ?? [] where pair.array?.first?.string == consumer {
                total += pair.array?.last?.string.flatMap { Int($0) } ?? pair.array?.last?.int ?? 0
            }
        }
        return total
    }

    /// The `rmu` group's lag and pending count, summed over partitions.
    private func groupState(_ layout: KeyLayout, _ pool: RedisConnectionPool) async throws -> (lag: Int, pending: Int) {
        let samples = try await ConsumerGroupMonitor(redis: pool, layout: layout).sample()
        return (samples.reduce(0) { $0 + $1.lag }, samples.reduce(0) { $0 + $1.pending })
    }

    private func withPool(_ body: @Sendable (RedisConnectionPool) async throws -> Void) async throws {
        let pool = RedisConnectionPool(configuration: try RedisConfiguration(url: TestRedis.url), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            defer { group.cancelAll() }
            try await body(pool)
        }
    }
}

/// Every read-model key of the namespace with a canonical rendering of its
/// value (hash fields sorted, sorted sets with their scores), to compare two
/// read models exactly.
func dumpReadModel(_ layout: KeyLayout, _ pool: RedisConnectionPool) async throws -> [String: String] {
    var dump: [String: String] = [:]
    let live = try await layout.liveReadModel(on: pool, logger: Logger(label: "dump"))
    for pattern in live.readModelKeyPatterns {
        var cursor = "0"
        repeat {
            let reply = try await pool.send(RedisCommand("SCAN", cursor, "MATCH", pattern, "COUNT", "1000"))
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let keys = parts[1].array else {
                throw CLITestFailure("unexpected SCAN reply")
            }
            cursor = next
            for generationKey in keys.compactMap(\.string) {
                let key = live.withoutGeneration(generationKey)
                switch try await pool.send(RedisCommand("TYPE", generationKey)).string {
                case "hash":
                    let flat = try await pool.send(RedisCommand("HGETALL", generationKey)).array?.compactMap(\.string) ?? []
                    dump[key] = stride(from: 0, to: flat.count - 1, by: 2).map { "\(flat[$0])=\(flat[$0 + 1])" }.sorted().joined(separator: "\n")
                case "zset":
                    let flat = try await pool.send(RedisCommand("ZRANGE", generationKey, "0", "-1", "WITHSCORES")).array?.compactMap(\.string) ?? []
                    dump[key] = flat.joined(separator: " ")
                case let type:
                    dump[key] = type ?? "?"
                }
            }
        } while cursor != "0"
    }
    return dump
}
