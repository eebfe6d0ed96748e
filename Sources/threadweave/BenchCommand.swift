import ArgumentParser
import EventStore
import Foundation
import Histogram
import Logging
import Synchronization
import ThreadDomain
import ThreadFunctions

/// A load generator for the write path: writers post messages through the
/// command runner (load, decide, conditional append, retry) and the report
/// gives throughput, latency percentiles (HdrHistogram) and conflicts. Closed
/// loop by default (each writer sends its next command when the last one is
/// answered); with `--rate`, open loop: commands are due at a fixed rate and
/// latency counts from when each was due, so a stall shows in the tail
/// instead of slowing the load (coordinated omission). Several processes
/// pointed at one `--thread` exercise the append protocol across processes.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Load-test the write path against Redis and print a report."
    )

    @OptionGroup var options: GlobalOptions

    @Option(help: "Concurrent writers.")
    var writers: Int = 32

    @Option(help: "Commands per writer.")
    var commands: Int = 100

    @Option(help: "Threads to spread writers over (ignored with --thread).")
    var threads: Int = 8

    @Option(help: "Write to this one thread (created by --admin if missing; the writers join it): run several bench processes on one thread to race them.")
    var thread: String?

    @Option(help: "The administrator account that creates threads and lets writers join (required with --thread).")
    var admin: String?

    @Option(help: "Open loop: commands per second in all, due at fixed intervals; the writers are the concurrency cap.")
    var rate: Double?

    @Flag(help: "Print the report as one JSON object.")
    var json = false

    func validate() throws {
        guard writers > 0, commands > 0, threads > 0 else { throw ValidationError("counts must be positive") }
        if let rate, !(rate > 0) { throw ValidationError("--rate must be positive") }
        if let thread, ThreadID(thread) == nil { throw ValidationError("--thread must be a ULID") }
        if let admin, AccountID(admin) == nil { throw ValidationError("--admin must be a ULID") }
        if thread != nil, admin == nil { throw ValidationError("--thread needs --admin, the account that administers it") }
    }

    func run() async throws {
        let logger = options.makeLogger(label: "threadweave.bench")
        var configuration = try options.redisConfiguration()
        configuration.maximumConnections = max(configuration.maximumConnections, 8)
        let report = try await withRedisPool(configuration, logger: logger) { pool in
            let layout = try await options.layout(on: pool)
            _ = try await StoreSetup.run(on: pool, layout: layout, libraries: StoreSetup.Library.all)
            var runnerConfiguration = CommandRunner.Configuration()
            runnerConfiguration.queueWaitLimit = pool.configuration.commandTimeout
            let runner = CommandRunner(
                store: RedisEventStore(redis: pool, layout: layout, logger: logger), configuration: runnerConfiguration, logger: logger)
            return try await runBench(runner)
        }
        print(json ? report.json : report.text)
        // Conflicts that outlast the retries are an expected answer under contention; anything else is a failure.
        if report.failed > report.samples.failures["conflict", default: 0] { throw ExitCode(1) }
    }

    private func runBench(_ runner: CommandRunner) async throws -> BenchReport {
        let admin = self.admin.flatMap(AccountID.init) ?? AccountID.generate()
        let accounts = (0..<writers).map { _ in AccountID.generate() }
        var threadIds: [ThreadID] = []
        if let thread = thread.flatMap(ThreadID.init) {
            threadIds = [thread]
            do {
                try await create(thread, admin: admin, members: [], runner)
            } catch let error as FunctionError where error.code == .threadExists {
                // Another bench process created it first.
            }
            _ = try await runner.run(CommandRequest(threadId: thread, command: .joinMembers(accounts), actor: admin))
        } else {
            for _ in 0..<threads {
                let id = ThreadID.generate()
                try await create(id, admin: admin, members: accounts, runner)
                threadIds.append(id)
            }
        }

        let started = ContinuousClock.now
        let schedule = rate.map { OpenLoopSchedule(start: started + .milliseconds(10), rate: $0) }
        let samples = try await withThrowingTaskGroup(of: WriterResult.self) { group in
            for (index, account) in accounts.enumerated() {
                let threadId = threadIds[index % threadIds.count]
                group.addTask {
                    var result = WriterResult()
                    for number in 0..<commands {
                        let message = NewMessage(id: .generate(), text: "bench \(number) from \(account)")
                        // Open loop: wait for this command's slot, and count latency from it.
                        let begin: ContinuousClock.Instant
                        if let schedule {
                            begin = schedule.nextSlot()
                            try? await Task.sleep(until: begin, clock: .continuous)
                        } else {
                            begin = ContinuousClock.now
                        }
                        do throws(FunctionError) {
                            let outcome = try await runner.run(
                                CommandRequest(threadId: threadId, command: .addMessages([message]), actor: account))
                            result.record(ContinuousClock.now - begin)
                            result.retries += outcome.attempts - 1
                            result.messageIds.append(message.id)
                        } catch {
                            result.failures[error.code.rawValue, default: 0] += 1
                        }
                    }
                    return result
                }
            }
            return try await group.reduce(into: WriterResult()) { $0.merge($1) }
        }
        return BenchReport(
            elapsed: ContinuousClock.now - started, samples: samples, threads: threadIds, writers: writers)
    }

    private func create(_ id: ThreadID, admin: AccountID, members: [AccountID], _ runner: CommandRunner) async throws {
        let create = CreateThread(
            threadId: id, creatorId: admin, parentThreadId: nil, title: "bench", remarks: nil,
            administratorIds: [], memberIds: members)
        _ = try await runner.run(CommandRequest(threadId: id, command: .createThread(create), actor: admin))
    }
}

/// The due times of an open-loop run: slot `i` is due at `start + i / rate`.
final class OpenLoopSchedule: Sendable {
    private let start: ContinuousClock.Instant
    private let interval: Duration
    private let taken = Mutex(0)

    init(start: ContinuousClock.Instant, rate: Double) {
        self.start = start
        self.interval = .seconds(1 / rate)
    }

    func nextSlot() -> ContinuousClock.Instant {
        let slot = taken.withLock { taken in
            defer { taken += 1 }
            return taken
        }
        return start + interval * slot
    }
}

struct WriterResult: Sendable {
    /// Latencies in microseconds, 3 significant digits (HdrHistogram).
    var latencies = Histogram<UInt64>(numberOfSignificantValueDigits: .three)
    var retries = 0
    var failures: [String: Int] = [:]
    var messageIds: [MessageID] = []

    mutating func record(_ latency: Duration) {
        _ = latencies.record(UInt64(max(latency.seconds * 1_000_000, 1)))
    }

    mutating func merge(_ other: WriterResult) {
        latencies.add(other.latencies)
        retries += other.retries
        failures.merge(other.failures, uniquingKeysWith: +)
        messageIds += other.messageIds
    }
}

struct BenchReport {
    let elapsed: Duration
    let samples: WriterResult
    let threads: [ThreadID]
    let writers: Int
    init(elapsed: Duration, samples: WriterResult, threads: [ThreadID], writers: Int) {
        self.elapsed = elapsed
        self.samples = samples
        self.threads = threads
        self.writers = writers
    }

    var succeeded: Int { Int(samples.latencies.totalCount) }
    var failed: Int { samples.failures.values.reduce(0, +) }
    var throughput: Double { Double(succeeded) / max(elapsed.seconds, 1e-9) }

    /// Milliseconds at fraction `p` (1 is the maximum).
    func percentile(_ p: Double) -> Double {
        guard succeeded > 0 else { return 0 }
        let microseconds = p >= 1 ? samples.latencies.max : samples.latencies.valueAtPercentile(p * 100)
        return Double(microseconds) / 1000
    }

    var text: String {
        """
        writers \(writers), threads \(threads.count), commands ok \(succeeded), failed \(failed) \(samples.failures)
        elapsed \(String(format: "%.2f", elapsed.seconds)) s, throughput \(String(format: "%.0f", throughput)) commands/s, retries \(samples.retries)
        latency ms p50 \(String(format: "%.2f", percentile(0.5))) p95 \(String(format: "%.2f", percentile(0.95))) p99 \(String(format: "%.2f", percentile(0.99))) p99.9 \(String(format: "%.2f", percentile(0.999))) max \(String(format: "%.2f", percentile(1)))
        """
    }

    var json: String {
        let object: [String: Any] = [
            "writers": writers, "threads": threads.map(\.rawValue), "succeeded": succeeded, "failed": failed,
            "failures": samples.failures, "retries": samples.retries, "elapsedSeconds": elapsed.seconds,
            "throughputPerSecond": throughput, "latencyMs": [
                "p50": percentile(0.5), "p95": percentile(0.95), "p99": percentile(0.99), "p999": percentile(0.999),
                "max": percentile(1),
            ],
            "messageIds": samples.messageIds.map(\.rawValue),
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
