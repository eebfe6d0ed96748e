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
            started it), then stops it (SIGTERM: an AOF is flushed) and exits 0. Arguments after -- go to \
            redis-server, e.g. -- --appendonly yes.
            """
    )

    @Option(name: .customLong("data-dir"), help: "Data directory (default: a fresh temporary one, removed on exit).")
    var dataDirectory: String?

    @Option(help: "Listen on this unix socket instead of a free loopback port.")
    var unixSocket: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (env LOG_LEVEL).")
    var logLevel: String?

    @Argument(parsing: .postTerminator, help: "Extra redis-server arguments, after --.")
    var redisArguments: [String] = []

    func run() async throws {
        let level = (logLevel ?? ProcessInfo.processInfo.environment["LOG_LEVEL"]).flatMap(Logger.Level.init(rawValue:))
        LoggingSystem.bootstrapOnce(json: false)
        var logger = Logger(label: "threadweave.redis-server")
        logger.logLevel = level ?? .info
        let temporary = dataDirectory == nil
        let directory =
            dataDirectory.map { URL(fileURLWithPath: $0, isDirectory: true) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("threadweave-redis.\(UUID().uuidString.prefix(8))")
        defer { if temporary { try? FileManager.default.removeItem(at: directory) } }
        let service = LocalRedisService(
            directory: directory, listener: unixSocket.map { .unixSocket(path: $0) } ?? .freeLoopbackPort,
            arguments: redisArguments, logger: logger)
        // Stdin closing ends the service by itself: that is a normal end, not a failure.
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
    let logger: Logger

    func run() async throws {
        try await withLocalRedisServer(directory: directory, listener: listener, arguments: arguments, logger: logger) {
            server in
            var port: Int?
            if case .tcp(_, let tcpPort) = server.endpoint { port = tcpPort }
            let announcement = LocalRedisAnnouncement(
                url: server.url, pid: server.pid ?? 0, port: port, dataDir: directory.path)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            FileHandle.standardOutput.write(try encoder.encode(announcement) + Data("\n".utf8))
            await untilShutdownOrStandardInputCloses()
        }
    }

    /// Returns on graceful shutdown (SIGTERM/SIGINT), cancellation, or EOF on stdin.
    private func untilShutdownOrStandardInputCloses() async {
        let waiter = OnceWaiter()
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await waiter.wait {
                    // A blocking read needs a thread of its own; it ends with the process at the latest.
                    Thread.detachNewThread {
                        var buffer = [UInt8](repeating: 0, count: 512)
                        while read(STDIN_FILENO, &buffer, buffer.count) > 0 {}
                        waiter.fire()
                    }
                }
            } onGracefulShutdown: {
                waiter.fire()
            }
        } onCancel: {
            waiter.fire()
        }
    }
}

/// One wait, ended by the first `fire()` (from any thread), also when that came first.
private final class OnceWaiter: Sendable {
    private enum State {
        case idle
        case waiting(CheckedContinuation<Void, Never>)
        case fired
    }
    private let state = Mutex(State.idle)

    func wait(starting start: () -> Void) async {
        await withCheckedContinuation { continuation in
            let firedAlready = state.withLock { state in
                if case .fired = state { return true }
                state = .waiting(continuation)
                return false
            }
            if firedAlready { continuation.resume() } else { start() }
        }
    }

    func fire() {
        let waiting = state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state = .fired }
            if case .waiting(let continuation) = state { return continuation }
            return nil
        }
        waiting?.resume()
    }
}
