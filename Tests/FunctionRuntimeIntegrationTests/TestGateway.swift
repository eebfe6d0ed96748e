import EventStore
import Foundation
import FunctionRuntime
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import ReadModel
import RedisClient
import RedisTestSupport
import ThreadDomain
import ThreadFunctions

/// A function application on a fresh namespace of the test Redis, driven
/// through Hummingbird's router test client, with its pool running beside it.
struct TestGateway: Sendable {
    /// Whether the read side runs: `setUp` loads both libraries and creates the
    /// `rmu` groups; `worker` also runs a read-model worker beside the app, as `serve` does.
    enum ReadSide {
        case none, setUp, worker
    }

    let client: any TestClientProtocol
    let layout: KeyLayout
    let redis: RedisConnectionPool
    let metrics: RuntimeMetrics
    let watcher: ThreadWatcher?

    static func run(
        redisURL: String = TestRedis.url,
        mode: RuntimeConfiguration.Mode = .gateway,
        commandTimeout: Duration = .seconds(5),
        testing: TestingSetup = .router,
        readSide: ReadSide = .none,
        watchLimits: ThreadWatcher.Limits = .init(),
        watchLanes: Int = 4,
        redisConnections: Int? = nil,
        authentication: Authentication = .none,
        http adjustHTTP: (inout RuntimeConfiguration.HTTP) -> Void = { _ in },
        _ body: @Sendable (TestGateway) async throws -> Void
    ) async throws {
        var configuration = try RedisConfiguration(url: redisURL)
        configuration.commandTimeout = commandTimeout
        configuration.connectTimeout = .milliseconds(500)
        if let redisConnections { configuration.maximumConnections = redisConnections }
        var logger = Logger(label: "function-runtime-test")
        logger.logLevel = .critical
        let pool = RedisConnectionPool(configuration: configuration, logger: logger)
        let layout = KeyLayout(namespace: TestRedis.uniqueNamespace("fr"), partitionCount: 4)
        let metrics = RuntimeMetrics()
        var http = RuntimeConfiguration.HTTP(host: "127.0.0.1", port: 0)
        adjustHTTP(&http)
        let dependencies = RedisBackend.dependencies(
            pool: pool, layout: layout, metrics: metrics, logger: logger, watchLimits: watchLimits, watchLanes: watchLanes)
        let application = try FunctionApplication.make(
            configuration: RuntimeConfiguration(http: http, mode: mode),
            authentication: authentication,
            dependencies: dependencies,
            metrics: metrics,
            readiness: RedisBackend.readiness(redis: pool),
            logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            if let watcher = dependencies.watcher { group.addTask { try await watcher.run() } }
            defer { group.cancelAll() }
            if readSide != .none {
                _ = try await StoreSetup.run(on: pool, layout: layout, libraries: StoreSetup.Library.all)
            }
            if readSide == .worker {
                var worker = ReadModelWorker.Configuration(consumerName: "test-worker")
                worker.block = .milliseconds(100)
                worker.retryPause = .milliseconds(50)
                let service = ReadModelWorker(
                    pool: pool, layout: layout, configuration: worker, logger: logger, metricsFactory: metrics.factory)
                group.addTask { try await service.run() }
            }
            try await application.test(testing) { client in
                try await body(TestGateway(client: client, layout: layout, redis: pool, metrics: metrics, watcher: dependencies.watcher))
            }
        }
    }

    // MARK: Requests

    func post(
        _ uri: String, _ json: String, headers: HTTPFields = [.contentType: "application/json"]
    ) async throws -> TestResponse {
        try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: json)) { $0 }
    }

    func get(_ uri: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await client.execute(uri: uri, method: .get, headers: headers) { $0 }
    }

    /// Creates a thread administered by `creator` with `members`; answers its id.
    func createThread(creator: AccountID, members: [AccountID] = [], administrators: [AccountID] = []) async throws -> ThreadID {
        let response = try await post(
            "/v1/threads/create",
            json(["accountId": creator.rawValue, "title": "a thread", "memberIds": members.map(\.rawValue),
                  "administratorIds": administrators.map(\.rawValue)]))
        guard response.status == .created else { throw TestFailure("create answered \(response.status): \(response.text)") }
        return try response.answer().threadId
    }

    func addMessage(_ text: String, by sender: AccountID, to thread: ThreadID) async throws -> TestResponse {
        try await post(
            "/v1/threads/\(thread)/messages/add",
            json(["accountId": sender.rawValue, "messages": [["text": text]]]))
    }

    // MARK: Redis inspection

    /// Every key of the namespace with its type and length: equal before and
    /// after a request means the request wrote nothing.
    func namespaceContents() async throws -> [String: String] {
        var contents: [String: String] = [:]
        var cursor = "0"
        repeat {
            let reply = try await redis.send(RedisCommand("SCAN", cursor, "MATCH", "\(layout.namespace):*", "COUNT", "1000"))
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let keys = parts[1].array else {
                throw TestFailure("unexpected SCAN reply")
            }
            cursor = next
            for key in keys.compactMap(\.string) {
                let type = try await redis.send(RedisCommand("TYPE", key)).string ?? "?"
                let lengthCommand = ["stream": "XLEN", "hash": "HLEN", "string": "STRLEN", "zset": "ZCARD", "set": "SCARD"][type] ?? "EXISTS"
                let length = try await redis.send(RedisCommand(lengthCommand, key)).int ?? -1
                contents[key] = "\(type):\(length)"
            }
        } while cursor != "0"
        return contents
    }

    func streamLength(of thread: ThreadID) async throws -> Int {
        try await redis.send(RedisCommand("XLEN", layout.threadStream(thread))).int ?? -1
    }
}

/// The answer of a command function.
struct Answer: Decodable, Equatable {
    var threadId: ThreadID
    var version: Int64
    var messageIds: [MessageID]?
}

struct ErrorBody: Decodable, Equatable {
    struct Detail: Decodable, Equatable {
        var code: String
        var message: String
    }
    var error: Detail
}

extension TestResponse {
    var text: String { String(buffer: body) }

    func answer() throws -> Answer {
        try JSONDecoder().decode(Answer.self, from: Data(buffer: body))
    }

    /// The error code, after checking the body has exactly the error shape.
    func errorCode() throws -> String {
        let object = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]
        guard let object, object.count == 1, let detail = object["error"] as? [String: Any], detail.count == 2,
            detail["message"] is String, let code = detail["code"] as? String
        else { throw TestFailure("not the error shape: \(text)") }
        return code
    }
}

func json(_ object: [String: Any]) -> String {
    String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
