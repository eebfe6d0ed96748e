import ArgumentParser
import EventStore
import Foundation
import Histogram
import Logging
import NIOCore
import NIOPosix
import Synchronization
import ThreadDomain
import ThreadFunctions

/// A load generator for the write path: writers post messages and the
/// report gives throughput, latency percentiles (HdrHistogram) and failures.
/// By default the writers go through the command runner (load, decide,
/// conditional append, retry) against Redis, with no HTTP; with `--url` they
/// post add-messages to a running service, each over its own keep-alive
/// connection. Closed loop by default (each writer sends its next command
/// when the last one is answered); with `--rate`, open loop: commands are due
/// at a fixed rate and latency counts from when each was due, so a stall
/// shows in the tail instead of slowing the load (coordinated omission).
/// Several processes pointed at one `--thread` exercise the append protocol
/// across processes.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Load-test the write path, against Redis or a running service over HTTP, and print a report."
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

    @Option(help: "Post to the service at this base URL (http://host:port, accounts trusted from the body: a `serve` or functions run with `--auth none`) instead of running commands against Redis.")
    var url: String?

    @Option(help: "With --url: create the threads at this base URL instead (a create-thread function's, when --url is an add-messages function's).")
    var createUrl: String?

    @Flag(help: "Print the report as one JSON object.")
    var json = false

    func validate() throws {
        guard writers > 0, commands > 0, threads > 0 else { throw ValidationError("counts must be positive") }
        if let rate, !(rate > 0) { throw ValidationError("--rate must be positive") }
        if let thread, ThreadID(thread) == nil { throw ValidationError("--thread must be a ULID") }
        if let admin, AccountID(admin) == nil { throw ValidationError("--admin must be a ULID") }
        if thread != nil, admin == nil { throw ValidationError("--thread needs --admin, the account that administers it") }
        if let url {
            guard BenchHTTPTarget.Endpoint(url: url) != nil else { throw ValidationError("--url must be http://host:port") }
            if let createUrl, BenchHTTPTarget.Endpoint(url: createUrl) == nil {
                throw ValidationError("--create-url must be http://host:port")
            }
            if thread != nil { throw ValidationError("--thread races processes on the append protocol: it needs Redis, not --url") }
        } else if createUrl != nil {
            throw ValidationError("--create-url goes with --url")
        }
    }

    func run() async throws {
        let report: BenchReport
        if let url, let target = BenchHTTPTarget(url: url, createURL: createUrl) {
            report = try await runBench(target)
        } else {
            let logger = options.makeLogger(label: "threadweave.bench")
            var configuration = try options.redisConfiguration()
            configuration.maximumConnections = max(configuration.maximumConnections, 8)
            report = try await withRedisPool(configuration, logger: logger) { pool in
                let layout = try await options.layout(on: pool)
                _ = try await StoreSetup.run(on: pool, layout: layout, libraries: StoreSetup.Library.all)
                var runnerConfiguration = CommandRunner.Configuration()
                runnerConfiguration.queueWaitLimit = pool.configuration.commandTimeout
                let runner = CommandRunner(
                    store: RedisEventStore(redis: pool, layout: layout, logger: logger), configuration: runnerConfiguration, logger: logger)
                return try await runBench(BenchRunnerTarget(runner: runner))
            }
        }
        print(json ? report.json : report.text)
        // Conflicts that outlast the retries are an expected answer under contention; anything else is a failure.
        if report.failed > report.samples.failures["conflict", default: 0] { throw ExitCode(1) }
    }

    private func runBench(_ target: some BenchTarget) async throws -> BenchReport {
        let admin = self.admin.flatMap(AccountID.init) ?? AccountID.generate()
        // Spread over threads of their own, the writers all act as the administrator: a thread
        // of one participant, and set-up that costs the server one create per thread.
        var accounts = Array(repeating: admin, count: writers)
        var threadIds: [ThreadID] = []
        if let thread = thread.flatMap(ThreadID.init), let runner = (target as? BenchRunnerTarget)?.runner {
            accounts = (0..<writers).map { _ in AccountID.generate() }
            threadIds = [thread]
            do {
                try await BenchRunnerTarget.create(thread, admin: admin, runner)
            } catch let error as FunctionError where error.code == .threadExists {
                // Another bench process created it first.
            }
            _ = try await runner.run(CommandRequest(threadId: thread, command: .joinMembers(accounts), actor: admin))
        } else {
            threadIds = try await target.createThreads(threads, admin: admin)
        }
        let started = ContinuousClock.now
        let samples = try await target.drive(commands: commands, from: accounts, to: threadIds, rate: rate)
        return BenchReport(
            elapsed: ContinuousClock.now - started, samples: samples, threads: threadIds, writers: writers)
    }
}

/// Where the bench's commands go.
protocol BenchTarget: Sendable {
    /// Creates `count` threads administered by `admin`.
    func createThreads(_ count: Int, admin: AccountID) async throws -> [ThreadID]
    /// Runs the load: one writer per account, writer `i` posting `commands` messages to
    /// `threads[i % threads.count]`; closed loop, or open loop at `rate` commands/s in all.
    func drive(commands: Int, from accounts: [AccountID], to threads: [ThreadID], rate: Double?) async throws -> WriterResult
}

extension NewMessage {
    /// The `number`th message of writer `writer`: about sixty characters, as a chat line.
    static func bench(_ number: Int, from writer: Int, id: MessageID) -> NewMessage {
        NewMessage(id: id, text: "bench message \(number) from writer \(writer), about sixty characters")
    }
}

/// The bench could not set up its threads: a run-time failure (exit 1), not a wrong command line.
struct BenchSetupError: Error, CustomStringConvertible {
    var description: String
}

/// The command runner against Redis: no HTTP, retries counted.
struct BenchRunnerTarget: BenchTarget {
    let runner: CommandRunner

    func createThreads(_ count: Int, admin: AccountID) async throws -> [ThreadID] {
        var ids: [ThreadID] = []
        for _ in 0..<count {
            let id = ThreadID.generate()
            try await Self.create(id, admin: admin, runner)
            ids.append(id)
        }
        return ids
    }

    static func create(_ id: ThreadID, admin: AccountID, _ runner: CommandRunner) async throws {
        let create = CreateThread(
            threadId: id, creatorId: admin, parentThreadId: nil, title: "bench", remarks: nil,
            administratorIds: [], memberIds: [])
        _ = try await runner.run(CommandRequest(threadId: id, command: .createThread(create), actor: admin))
    }

    /// A task per writer, each running its commands through the runner in turn.
    func drive(commands: Int, from accounts: [AccountID], to threads: [ThreadID], rate: Double?) async throws -> WriterResult {
        let schedule = rate.map { OpenLoopSchedule(start: ContinuousClock.now + .milliseconds(10), rate: $0) }
        return await withTaskGroup(of: WriterResult.self) { group in
            for (index, account) in accounts.enumerated() {
                let threadId = threads[index % threads.count]
                group.addTask {
                    var result = WriterResult()
                    for number in 0..<commands {
                        let message = NewMessage.bench(number, from: index, id: .generate())
                        // Open loop: wait for this command's slot, and count latency from it.
                        let begin: ContinuousClock.Instant
                        if let schedule {
                            begin = schedule.nextSlot()
                            try? await Task.sleep(until: begin, clock: .continuous)
                            result.recordStartDelay(ContinuousClock.now - begin)
                        } else {
                            begin = ContinuousClock.now
                        }
                        do throws(FunctionError) {
                            let outcome = try await runner.run(CommandRequest(threadId: threadId, command: .addMessages([message]), actor: account))
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
            return await group.reduce(into: WriterResult()) { $0.merge($1) }
        }
    }
}

/// A running service over HTTP: create-thread and add-messages as a client posts them.
struct BenchHTTPTarget: BenchTarget {
    struct Endpoint: Sendable, Hashable {
        let host: String
        let port: Int

        /// `http://host:port`, a trailing slash allowed.
        init?(url: String) {
            guard url.hasPrefix("http://") else { return nil }
            let authority = url.dropFirst("http://".count).split(separator: "/", omittingEmptySubsequences: false)[0]
            guard let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...]),
                (1...65_535).contains(port), colon > authority.startIndex,
                url.dropFirst("http://".count + authority.count).allSatisfy({ $0 == "/" })
            else { return nil }
            self.host = String(authority[..<colon])
            self.port = port
        }
    }

    /// Where the writers post.
    let endpoint: Endpoint
    /// Where the threads are created: the same service, or a create-thread function of its own.
    let creation: Endpoint

    init?(url: String, createURL: String?) {
        guard let endpoint = Endpoint(url: url), let creation = Endpoint(url: createURL ?? url) else { return nil }
        self.endpoint = endpoint
        self.creation = creation
    }

    /// All on one connection: set-up, not the load.
    func createThreads(_ count: Int, admin: AccountID) async throws -> [ThreadID] {
        let connection = try await BenchHTTPConnection.connect(host: creation.host, port: creation.port)
        do {
            var ids: [ThreadID] = []
            for _ in 0..<count { ids.append(try await createThread(admin: admin, on: connection)) }
            await connection.close()
            return ids
        } catch {
            await connection.close()
            throw error
        }
    }

    private func createThread(admin: AccountID, on connection: BenchHTTPConnection) async throws -> ThreadID {
        var body = CanonicalJSONWriter()
        body.beginObject()
        body.field("accountId", admin.rawValue)
        body.field("title", "bench")
        body.endObject()
        let response = try await connection.send(.POST, "/v1/threads/create", json: body.bytes)
        struct Created: Decodable { var threadId: ThreadID }
        guard response.status == 201, let created = try? JSONDecoder().decode(Created.self, from: Data(response.body.readableBytesView)) else {
            throw BenchSetupError(description: "create-thread answered \(response.status): \(String(buffer: response.body))")
        }
        return created.threadId
    }

    /// Every writer's connection on one event loop, driven there (`BenchHTTPLoad`).
    func drive(commands: Int, from accounts: [AccountID], to threads: [ThreadID], rate: Double?) async throws -> WriterResult {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let connections = try await withThrowingTaskGroup(of: BenchHTTPConnection.self) { group in
            for _ in accounts { group.addTask { try await BenchHTTPConnection.connect(host: endpoint.host, port: endpoint.port, on: loop) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let result = try await BenchHTTPLoad.run(
            on: loop, connections: connections, threads: threads, accounts: accounts, commands: commands, rate: rate)
        for connection in connections { await connection.close() }
        return result
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
    /// Open loop: commands sent more than 5 ms after they were due.
    var lateStarts = 0
    /// Open loop: how long after its due time each send began, in microseconds. The part of a
    /// latency that is the generator's own (a busy writer, a late timer, a late thread).
    var startDelays = Histogram<UInt64>(numberOfSignificantValueDigits: .three)
    var failures: [String: Int] = [:]
    var messageIds: [MessageID] = []

    mutating func record(_ latency: Duration) {
        _ = latencies.record(UInt64(max(latency.seconds * 1_000_000, 1)))
    }

    /// Open loop: a send began `delay` after it was due. Over 5 ms, every writer was busy or
    /// the generator fell behind: a late start.
    mutating func recordStartDelay(_ delay: Duration) {
        _ = startDelays.record(UInt64(max(delay.seconds * 1_000_000, 1)))
        if delay > .milliseconds(5) { lateStarts += 1 }
    }

    mutating func merge(_ other: WriterResult) {
        latencies.add(other.latencies)
        retries += other.retries
        lateStarts += other.lateStarts
        startDelays.add(other.startDelays)
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

    /// Milliseconds of latency at fraction `p` (1 is the maximum).
    func percentile(_ p: Double) -> Double {
        Self.milliseconds(at: p, of: samples.latencies)
    }

    /// Milliseconds at fraction `p` of a histogram of microseconds (1 is the maximum).
    static func milliseconds(at p: Double, of histogram: Histogram<UInt64>) -> Double {
        guard histogram.totalCount > 0 else { return 0 }
        let microseconds = p >= 1 ? histogram.max : histogram.valueAtPercentile(p * 100)
        return Double(microseconds) / 1000
    }

    /// Open loop: milliseconds a send began after its due time, at fraction `p` (1 is the maximum).
    func startDelay(_ p: Double) -> Double {
        Self.milliseconds(at: p, of: samples.startDelays)
    }

    var text: String {
        """
        writers \(writers), threads \(threads.count), commands ok \(succeeded), failed \(failed) \(samples.failures)
        elapsed \(String(format: "%.2f", elapsed.seconds)) s, throughput \(String(format: "%.0f", throughput)) commands/s, retries \(samples.retries), sent over 5 ms late \(samples.lateStarts)
        latency ms p50 \(String(format: "%.2f", percentile(0.5))) p95 \(String(format: "%.2f", percentile(0.95))) p99 \(String(format: "%.2f", percentile(0.99))) p99.9 \(String(format: "%.2f", percentile(0.999))) max \(String(format: "%.2f", percentile(1)))
        """ + (samples.startDelays.totalCount == 0 ? "" : """

        sends begun after their due time, ms: p50 \(String(format: "%.2f", startDelay(0.5))) p99 \(String(format: "%.2f", startDelay(0.99))) max \(String(format: "%.2f", startDelay(1)))
        """)
    }

    var json: String {
        let object: [String: Any] = [
            "writers": writers, "threads": threads.map(\.rawValue), "succeeded": succeeded, "failed": failed,
            "failures": samples.failures, "retries": samples.retries, "lateStarts": samples.lateStarts, "elapsedSeconds": elapsed.seconds,
            "throughputPerSecond": throughput, "latencyMs": [
                "p50": percentile(0.5), "p95": percentile(0.95), "p99": percentile(0.99), "p999": percentile(0.999),
                "max": percentile(1),
            ],
            "startDelayMs": ["p50": startDelay(0.5), "p99": startDelay(0.99), "max": startDelay(1)],
            "messageIds": samples.messageIds.map(\.rawValue),
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
