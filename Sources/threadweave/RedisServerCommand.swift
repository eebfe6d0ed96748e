import ArgumentParser
import Foundation
import LocalRedis
import Logging
import ServiceLifecycle
import Synchronization

/// `threadweave redis-server`: the one launcher of a private redis-server, for
/// the scripts (scripts/with_redis.py) as for `serve` and the Swift tests
/// (all three go through `withLocalRedisServer`).
struct RedisServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis-server",
        abstract: "Run a private redis-server (free loopback port or unix socket, own data directory) for scripts and tests.",
        discussion: """
            Once the server answers, prints one JSON line on stdout: {"url", "pid", "dataDir"} (and "port" on TCP). \
            Keeps it up until SIGTERM or SIGINT, or until stdin closes (so it never outlives the program that \
            started it), then stops it (SIGTERM: an AOF is flushed) and exits 0. When redis-server exits by \
            itself (killed, say), exits 1 at once. Arguments after -- go to redis-server, e.g. -- --appendonly yes.
            """
    )

    @Option(name: .customLong("data-dir"), help: "Data directory (default: a fresh temporary one, removed on exit).")
    var dataDirectory: String?

    @Option(help: "Listen on this unix socket instead of a free loopback port.")
    var unixSocket: String?

    @Option(help: "Listen on this loopback port instead of a free one (a restart where an earlier server ran).")
    var port: Int?

    @Option(
        name: .customLong("ready-when"),
        help: "answering: announce once PING is answered; listening: once it accepts connections, while it may still answer -LOADING."
    )
    var readiness: Readiness = .answering

    @Flag(help: "Stop on SIGTERM or SIGINT only, not when stdin closes (for a server that outlives its starter).")
    var ignoreStdin = false

    @OptionGroup var logging: LoggingOptions

    @Argument(parsing: .postTerminator, help: "Extra redis-server arguments, after --.")
    var redisArguments: [String] = []

    enum Readiness: String, ExpressibleByArgument, CaseIterable {
        case answering, listening
    }

    func validate() throws {
        if port != nil, unixSocket != nil { throw ValidationError("--port and --unix-socket exclude each other") }
    }

    func run() async throws {
        let logger = logging.makeLogger(label: "threadweave.redis-server")
        let temporary = dataDirectory == nil
        let directory =
            dataDirectory.map { URL(fileURLWithPath: $0, isDirectory: true) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("threadweave-redis.\(UUID().uuidString.prefix(8))")
        defer { if temporary { try? FileManager.default.removeItem(at: directory) } }
        let listener: LocalRedisServer.Listener =
            if let unixSocket { .unixSocket(path: unixSocket) } else if let port { .loopbackPort(port) } else { .freeLoopbackPort }
        let service = LocalRedisService(
            directory: directory, listener: listener, arguments: redisArguments,
            readiness: readiness == .listening ? .listening : .answering, watchesStandardInput: !ignoreStdin, logger: logger)
        // Stdin closing ends the service by itself: that is a normal end, not a failure (Redis exiting is one).
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// What `redis-server` prints once the server answers.
struct LocalRedisAnnouncement: Codable, Equatable {
    var url: String
    var pid: Int32
    var port: Int?
    var dataDir: String
}

private struct LocalRedisService: Service {
    let directory: URL
    let listener: LocalRedisServer.Listener
    let arguments: [String]
    let readiness: LocalRedisServer.Readiness
    let watchesStandardInput: Bool
    let logger: Logger

    func run() async throws {
        try await withLocalRedisServer(
            directory: directory, listener: listener, arguments: arguments, readiness: readiness, logger: logger
        ) { server in
            var port: Int?
            if case .tcp(_, let tcpPort) = server.endpoint { port = tcpPort }
            let announcement = LocalRedisAnnouncement(
                url: server.url, pid: server.pid ?? 0, port: port, dataDir: directory.path)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            FileHandle.standardOutput.write(try encoder.encode(announcement) + Data("\n".utf8))
            if await untilAnEnd(of: server) == .serverExited {
                throw LocalRedisError("redis-server exited by itself (see \(server.logFile.path))")
            }
        }
    }

    enum End { case asked, serverExited }

    /// Returns on graceful shutdown (SIGTERM/SIGINT), cancellation, EOF on stdin (when watched),
    /// or the server's own exit.
    private func untilAnEnd(of server: LocalRedisServer) async -> End {
        let waiter = OnceWaiter<End>()
        let exitWatch = Task {
            await server.untilExited()
            waiter.fire(.serverExited)
        }
        defer { exitWatch.cancel() }
        return await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await waiter.wait {
                    guard watchesStandardInput else { return }
                    // A blocking read needs a thread of its own; it ends with the process at the latest.
                    Thread.detachNewThread {
                        var buffer = [UInt8](repeating: 0, count: 512)
                        while read(STDIN_FILENO, &buffer, buffer.count) > 0 {}
                        waiter.fire(.asked)
                    }
                }
            } onGracefulShutdown: {
                waiter.fire(.asked)
            }
        } onCancel: {
            waiter.fire(.asked)
        }
    }
}

/// One wait, ended by the first `fire(_:)` (from any thread), also when that came first; returns what it was fired with.
private final class OnceWaiter<Value: Sendable>: Sendable {
    private enum State {
        case idle
        case waiting(CheckedContinuation<Value, Never>)
        case fired(Value)
    }
    private let state = Mutex(State.idle)

    func wait(starting start: () -> Void) async -> Value {
        await withCheckedContinuation { continuation in
            let firedAlready = state.withLock { state -> Value? in
                if case .fired(let value) = state { return value }
                state = .waiting(continuation)
                return nil
            }
            if let firedAlready { continuation.resume(returning: firedAlready) } else { start() }
        }
    }

    func fire(_ value: Value) {
        let waiting = state.withLock { state -> CheckedContinuation<Value, Never>? in
            switch state {
            case .idle:
                state = .fired(value)
                return nil
            case .waiting(let continuation):
                state = .fired(value)
                return continuation
            case .fired:
                return nil  // the first one counts
            }
        }
        waiting?.resume(returning: value)
    }
}
