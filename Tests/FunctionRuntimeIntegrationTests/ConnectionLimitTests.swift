import EventStore
import Foundation
import FunctionRuntime
import Hummingbird
import HummingbirdTesting
import LocalRedis
import Logging
import RedisClient
import RedisTestSupport
import Testing
import ThreadDomain

/// Slow clients against a live server over real loopback sockets: partial
/// request heads must not hold connections open, and the number of open
/// connections is capped.
@Suite(.timeLimit(.minutes(1))) struct ConnectionLimitTests {
    @Test func connectionsTricklingTheirHeadersAreClosedAfterTheIdleTimeout() async throws {
        try await TestGateway.run(testing: .live, http: { $0.idleTimeout = .milliseconds(300) }) { gateway in
            let port = try #require(gateway.client.port)
            var sockets: [RawSocket] = []
            for _ in 0..<30 {
                let socket = try await RawSocket.connect(port: port)
                try await socket.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                sockets.append(socket)
            }
            defer { sockets.forEach { $0.close() } }
            for socket in sockets {
                let started = ContinuousClock.now
                let (_, closed) = await socket.read(for: .seconds(5))
                #expect(closed, "a connection with a partial head stayed open")
                #expect(ContinuousClock.now - started < .seconds(3))
            }
        }
    }

    @Test func aWatchStreamOutlastsTheIdleTimeout() async throws {
        try await TestGateway.run(testing: .live, http: { $0.idleTimeout = .milliseconds(300) }) { gateway in
            let port = try #require(gateway.client.port)
            let creator = ULID.generate()
            // On a connection of its own: the test client's kept-alive one may sit idle past 300 ms
            // before its first request (a busy machine, a library loaded first) and be closed.
            let created = try await post(port: port, "/v1/threads/create", json(["accountId": creator.rawValue, "title": "t"]))
            #expect(created.hasPrefix("HTTP/1.1 201"), "\(created)")
            let body = try #require(created.range(of: "\r\n\r\n").map { Data(created[$0.upperBound...].utf8) })
            let thread = try #require((try JSONSerialization.jsonObject(with: body) as? [String: Any])?["threadId"] as? String)
            let watch = try await EventStreamClient.get(port: port, "/v1/threads/\(thread)/events?accountId=\(creator)")
            #expect(watch.status == 200)
            try await Task.sleep(for: .seconds(1))
            // On new connections: the test client's kept-alive one has been idle past the timeout too.
            let added = try await post(port: port, "/v1/threads/\(thread)/messages/add",
                json(["accountId": creator.rawValue, "messages": [["text": "after a quiet second"]]]))
            #expect(added.hasPrefix("HTTP/1.1 200"), "\(added)")
            let event = try await watch.nextEvent()
            #expect(event?.event == "MessagesAdded")
            // Destroying the thread ends the stream, so the server can stop at once.
            _ = try await post(port: port, "/v1/threads/\(thread)/destroy", json(["accountId": creator.rawValue]))
            while try await watch.nextEvent() != nil {}
            watch.disconnect()
        }
    }

    /// A JSON POST on a connection of its own; the raw answer.
    private func post(port: Int, _ path: String, _ body: String) async throws -> String {
        let socket = try await RawSocket.connect(port: port)
        defer { socket.close() }
        try await socket.send(
            "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
        return await socket.read(for: .seconds(5), until: { $0.contains("\"version\"") }).0
    }

    @Test func anIdleKeptAliveConnectionIsClosedAfterTheIdleTimeout() async throws {
        try await TestGateway.run(testing: .live, http: { $0.idleTimeout = .milliseconds(300) }) { gateway in
            let port = try #require(gateway.client.port)
            let socket = try await RawSocket.connect(port: port)
            defer { socket.close() }
            try await socket.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let (answer, _) = await socket.read(for: .seconds(2), until: { $0.contains("\"ok\"") })
            #expect(answer.hasPrefix("HTTP/1.1 200"))
            let (_, closed) = await socket.read(for: .seconds(3))
            #expect(closed, "an idle kept-alive connection stayed open")
        }
    }

    /// Run as a process runs it, not through HummingbirdTesting: its test
    /// application rebuilds the configuration and drops the connection cap.
    @Test func connectionsPastTheCapWaitUntilOneCloses() async throws {
        let port = try freeLoopbackPort()
        var logger = Logger(label: "connection-limit-test")
        logger.logLevel = .critical
        let pool = RedisConnectionPool(configuration: try RedisConfiguration(url: TestRedis.url), logger: logger)
        let layout = KeyLayout(namespace: TestRedis.uniqueNamespace("cap"), partitionCount: 4)
        let metrics = RuntimeMetrics()
        let application = try FunctionApplication.make(
            configuration: RuntimeConfiguration(http: .init(host: "127.0.0.1", port: port, maximumConnections: 4), mode: .gateway),
            authentication: .none,
            dependencies: RedisBackend.dependencies(pool: pool, layout: layout, metrics: metrics, logger: logger),
            metrics: metrics, readiness: { true }, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            group.addTask { try await application.runService() }
            defer { group.cancelAll() }

            // Four holders, each answered once (so surely accepted), then kept open (keep-alive).
            var holders: [RawSocket] = []
            defer { holders.forEach { $0.close() } }
            for _ in 0..<4 {
                let socket = try await RawSocket.connect(port: port, retryingFor: .seconds(10))
                holders.append(socket)
                try await socket.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                let (answer, _) = await socket.read(for: .seconds(2), until: { $0.contains("\"ok\"") })
                #expect(answer.hasPrefix("HTTP/1.1 200"))
            }

            let waiting = try await RawSocket.connect(port: port)
            defer { waiting.close() }
            try await waiting.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            let (early, _) = await waiting.read(for: .milliseconds(700))
            #expect(early.isEmpty, "a fifth connection was served while four were open: \(early)")

            holders.removeFirst().close()
            let (late, _) = await waiting.read(for: .seconds(5), until: { $0.contains("\"ok\"") })
            #expect(late.hasPrefix("HTTP/1.1 200"), "the waiting connection was not served once one closed")
        }
    }
}

/// A blocking loopback socket; every blocking call runs on a dispatch queue,
/// never on the cooperative pool.
final class RawSocket: @unchecked Sendable {
    private let descriptor: Int32

    private init(descriptor: Int32) { self.descriptor = descriptor }

    /// Connects, retrying refused attempts (a server still starting) for up to `patience`.
    static func connect(port: Int, retryingFor patience: Duration) async throws -> RawSocket {
        let deadline = ContinuousClock.now + patience
        while true {
            do {
                return try await connect(port: port)
            } catch where ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    static func connect(port: Int) async throws -> RawSocket {
        try await blockingThrowing {
            RawSocket(descriptor: try connectedLoopbackSocket(port: port, receiveTimeout: timeval(tv_sec: 0, tv_usec: 50_000)))
        }
    }

    func send(_ text: String) async throws {
        let bytes = Array(text.utf8)
        let sent = await Self.blocking { Foundation.send(self.descriptor, bytes, bytes.count, Int32(MSG_NOSIGNAL)) }
        guard sent == bytes.count else { throw TestFailure("send() sent \(sent) of \(bytes.count) bytes") }
    }

    /// What arrives within `duration` (or until `done` holds for it), and
    /// whether the server closed the connection meanwhile.
    func read(for duration: Duration, until done: @escaping @Sendable (String) -> Bool = { _ in false }) async -> (String, closed: Bool) {
        await Self.blocking {
            let deadline = ContinuousClock.now + duration
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while ContinuousClock.now < deadline {
                let count = recv(self.descriptor, &buffer, buffer.count, 0)
                if count == 0 { return (String(decoding: received, as: UTF8.self), true) }
                if count < 0 {
                    if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                    return (String(decoding: received, as: UTF8.self), true)  // reset by the server
                }
                received += buffer[..<count]
                if done(String(decoding: received, as: UTF8.self)) { break }
            }
            return (String(decoding: received, as: UTF8.self), false)
        }
    }

    /// Ends the client's side of the connection; the server's may still answer.
    func shutdownWrite() {
        shutdown(descriptor, Int32(SHUT_WR))
    }

    func close() {
        Foundation.close(descriptor)
    }

    private static func blockingThrowing<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }

    private static func blocking<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: work()) }
        }
    }
}
