import Foundation
import NIOCore
import NIOPosix
import ThreadDomain

/// The writers of `threadweave bench --url`, all on one event loop. A command
/// is sent when it is due (open loop) or when its writer's last answer is read
/// (closed loop), and its answer is counted where it is read: no task, timer
/// thread or cooperative-pool hop per command. The generator shares the two
/// cores with the service it measures, so its own cost and lateness must stay
/// small. A task per writer sleeping until each due time cost about 180 µs of
/// CPU a command, six times wrk's, and at 2,700 commands/s began 1% of its
/// sends over 50 ms late, which the run then counted as the service's latency.
final class BenchHTTPLoad {
    struct Writer {
        let connection: BenchHTTPConnection
        let thread: ThreadID
        let account: AccountID
        var sent = 0
        var alive = true
    }

    private let loop: any EventLoop
    private var writers: [Writer]
    private let commandsPerWriter: Int
    /// Open loop: slot `i` is due at `start + i × interval`.
    private let schedule: (start: NIODeadline, interval: Double)?
    private let slots: Int
    private var nextSlot = 0
    /// Open loop: writers with nothing in flight.
    private var idle: [Int] = []
    /// Open loop: due times of slots no writer was free to take yet, oldest first.
    private var waiting = CircularBuffer<NIODeadline>()
    private var unanswered: Int
    private var result = WriterResult()
    private var random = RandomReserve()
    private let finished: EventLoopPromise<WriterResult>

    /// Runs `commands` per writer (open loop: that many in all per writer, sent by whichever
    /// writer is free when each is due). Writer `i` posts to `threads[i % threads.count]` as
    /// `accounts[i]`; every connection must be on `loop`.
    static func run(
        on loop: any EventLoop, connections: [BenchHTTPConnection], threads: [ThreadID], accounts: [AccountID],
        commands: Int, rate: Double?
    ) async throws -> WriterResult {
        try await loop.flatSubmit {
            let load = BenchHTTPLoad(
                loop: loop, connections: connections, threads: threads, accounts: accounts, commands: commands, rate: rate)
            load.start()
            return load.finished.futureResult
        }.get()
    }

    private init(
        loop: any EventLoop, connections: [BenchHTTPConnection], threads: [ThreadID], accounts: [AccountID],
        commands: Int, rate: Double?
    ) {
        self.loop = loop
        self.writers = connections.indices.map {
            Writer(connection: connections[$0], thread: threads[$0 % threads.count], account: accounts[$0])
        }
        self.commandsPerWriter = commands
        self.schedule = rate.map { (NIODeadline.now() + .milliseconds(10), 1e9 / $0) }
        self.slots = connections.count * commands
        self.unanswered = slots
        self.finished = loop.makePromise()
    }

    private func start() {
        guard slots > 0 else { return finished.succeed(result) }
        if schedule != nil {
            idle = Array(writers.indices.reversed())
            releaseDueSlots()
        } else {
            for writer in writers.indices { send(writer, due: .now()) }
        }
    }

    private func dueTime(of slot: Int) -> NIODeadline {
        guard let schedule else { return .now() }
        return schedule.start + .nanoseconds(Int64(Double(slot) * schedule.interval))
    }

    /// Open loop: queues every slot due by now, hands them to free writers, and wakes at the next.
    private func releaseDueSlots() {
        let now = NIODeadline.now()
        while nextSlot < slots, dueTime(of: nextSlot) <= now {
            waiting.append(dueTime(of: nextSlot))
            nextSlot += 1
        }
        while !waiting.isEmpty, let writer = idle.popLast() { send(writer, due: waiting.removeFirst()) }
        if nextSlot < slots {
            loop.assumeIsolated().scheduleTask(deadline: dueTime(of: nextSlot)) { self.releaseDueSlots() }
        }
    }

    private func send(_ index: Int, due: NIODeadline) {
        if schedule != nil { result.recordStartDelay(.nanoseconds((NIODeadline.now() - due).nanoseconds)) }
        let number = writers[index].sent
        writers[index].sent += 1
        let message = NewMessage.bench(number, from: index, id: .generate(using: &random))
        let writer = writers[index]
        writer.connection.exchange(
            .POST, "/v1/threads/\(writer.thread.rawValue)/messages/add", json: Self.body(message, from: writer.account)
        ).assumeIsolated().whenComplete { answer in
            self.answered(index, message: message.id, due: due, answer)
        }
    }

    private func answered(_ index: Int, message: MessageID, due: NIODeadline, _ answer: Result<BenchHTTPConnection.Response, any Error>) {
        unanswered -= 1
        switch answer {
        case .success(let response) where response.status == 200:
            result.record(.nanoseconds((NIODeadline.now() - due).nanoseconds))
            result.messageIds.append(message)
        case .success(let response):
            result.failures[Self.errorCode(of: response), default: 0] += 1
        case .failure:
            result.failures["connection_failed", default: 0] += 1
            writers[index].alive = false
        }
        if writers[index].alive {
            nextCommand(for: index)
        } else {
            writerLost(index)
        }
        if unanswered == 0 { finished.succeed(result) }
    }

    private func nextCommand(for index: Int) {
        if schedule == nil {
            if writers[index].sent < commandsPerWriter { send(index, due: .now()) }
        } else if let due = waiting.popFirst() {
            send(index, due: due)
        } else {
            idle.append(index)
        }
    }

    /// A writer whose connection failed sends nothing more. Closed loop, its remaining commands
    /// fail; open loop, the others take its slots, and when none is left every unsent slot fails.
    private func writerLost(_ index: Int) {
        let unsent: Int
        if schedule == nil {
            unsent = commandsPerWriter - writers[index].sent
        } else if !writers.contains(where: \.alive) {
            unsent = waiting.count + slots - nextSlot
            waiting.removeAll()
            nextSlot = slots
        } else {
            unsent = 0
        }
        result.failures["connection_failed", default: 0] += unsent
        unanswered -= unsent
    }

    static func body(_ message: NewMessage, from account: AccountID) -> [UInt8] {
        var body = CanonicalJSONWriter()
        body.beginObject()
        body.field("accountId", account.rawValue)
        body.key("messages")
        body.beginArray()
        body.beginObject()
        body.field("id", message.id.rawValue)
        body.field("text", message.text)
        body.endObject()
        body.endArray()
        body.endObject()
        return body.bytes
    }

    /// The error code a refusal names, or `http_<status>`.
    static func errorCode(of response: BenchHTTPConnection.Response) -> String {
        struct Refusal: Decodable {
            struct Error: Decodable { var code: String }
            var error: Error
        }
        let refusal = try? JSONDecoder().decode(Refusal.self, from: Data(response.body.readableBytesView))
        return refusal?.error.code ?? "http_\(response.status)"
    }
}
