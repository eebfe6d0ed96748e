import EventStore
import Foundation
import FunctionRuntime
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOPosix
import RedisClient
import RedisTestSupport
import StoreTestSupport
import Synchronization
import Testing
import ThreadDomain
import ThreadFunctions

/// The gateway's own routes and headers: invocation by name, request ids,
/// health, readiness, metrics, single-function mode.
@Suite struct EdgeTests {
    let creator = ULID.generate()

    @Test func functionsCanBeInvokedByNameWithParametersInTheBody() async throws {
        try await TestGateway.run { gateway in
            let created = try await gateway.post("/function/create-thread", json(["accountId": creator.rawValue, "title": "t"]))
            #expect(created.status == .created)
            let thread = try created.answer().threadId
            let added = try await gateway.post(
                "/function/add-messages",
                json(["threadId": thread.rawValue, "accountId": creator.rawValue, "messages": [["text": "by name"]]]))
            #expect(added.status == .ok)
            #expect(try added.answer().version == 2)
        }
    }

    @Test func theRequestIdIsEchoedOrGenerated() async throws {
        try await TestGateway.run { gateway in
            let echoed = try await gateway.get("/healthz", headers: [HTTPField.Name("X-Request-Id")!: "req-123"])
            #expect(echoed.headers[HTTPField.Name("X-Request-Id")!] == "req-123")

            let refused = try await gateway.post(
                "/v1/threads/create", "{",
                headers: [.contentType: "application/json", HTTPField.Name("X-Request-Id")!: "req-456"])
            #expect(refused.headers[HTTPField.Name("X-Request-Id")!] == "req-456")

            let generated = try await gateway.post("/v1/threads/create", json(["accountId": creator.rawValue, "title": "t"]))
            let id = try #require(generated.headers[HTTPField.Name("X-Request-Id")!])
            #expect(ULID(id) != nil)
        }
    }

    @Test func overARealSocketAnOversizedBodyIsRefusedAndTheServerKeepsServing() async throws {
        try await TestGateway.run(testing: .live) { gateway in
            let huge = json(["accountId": creator.rawValue, "title": String(repeating: "x", count: 2 << 20)])
            let refused = try await gateway.post("/v1/threads/create", huge)
            #expect(refused.status == .contentTooLarge)
            #expect(try refused.errorCode() == "payload_too_large")
            #expect(refused.headers[HTTPField.Name("X-Request-Id")!] != nil)
            #expect(try await gateway.namespaceContents().isEmpty)
            let created = try await gateway.post("/v1/threads/create", json(["accountId": creator.rawValue, "title": "after"]))
            #expect(created.status == .created)
        }
    }

    @Test func healthAndReadinessAnswerWhenRedisIsUp() async throws {
        try await TestGateway.run { gateway in
            #expect(try await gateway.get("/healthz").status == .ok)
            let ready = try await gateway.get("/readyz")
            #expect(ready.status == .ok, "\(ready.text)")
        }
    }

    @Test func metricsCountRequestsPerFunctionAndStatus() async throws {
        try await TestGateway.run { gateway in
            let thread = try await gateway.createThread(creator: creator)
            _ = try await gateway.addMessage("hi", by: ULID.generate(), to: thread)
            let metrics = try await gateway.get("/metrics")
            #expect(metrics.status == .ok)
            #expect(metrics.headers[.contentType]?.hasPrefix("text/plain") == true)
            #expect(metrics.text.contains(#"threadweave_function_requests_total{function="create-thread",status="201"} 1"#))
            #expect(metrics.text.contains(#"threadweave_function_requests_total{function="add-messages",status="403"} 1"#))
            #expect(metrics.text.contains(#"threadweave_function_request_duration_seconds_bucket{function="create-thread",status="201""#))
        }
    }

    @Test func aSingleFunctionProcessServesRootAndItsRouteOnly() async throws {
        try await TestGateway.run(mode: .single(name: "create-thread")) { gateway in
            let viaRoot = try await gateway.post("/", json(["accountId": creator.rawValue, "title": "root"]))
            #expect(viaRoot.status == .created)
            let viaRoute = try await gateway.post("/v1/threads/create", json(["accountId": creator.rawValue, "title": "route"]))
            #expect(viaRoute.status == .created)
            let thread = try viaRoot.answer().threadId
            let other = try await gateway.addMessage("not here", by: creator, to: thread)
            #expect(other.status == .notFound)
            #expect(try other.errorCode() == "not_found")
            #expect(try await gateway.get("/metrics").status == .ok)
        }
    }

    /// Every HTTP process describes the API at `/openapi.json`, without authentication.
    @Test(arguments: [RuntimeConfiguration.Mode.gateway, .single(name: "create-thread"), .single(name: "watch-thread")])
    func everyProcessServesTheOpenAPIDocument(mode: RuntimeConfiguration.Mode) async throws {
        try await TestGateway.run(mode: mode) { gateway in
            let response = try await gateway.get("/openapi.json")
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            #expect(Data(buffer: response.body) == OpenAPIDocument.json)
            let document = try JSONSerialization.jsonObject(with: OpenAPIDocument.json) as? [String: Any]
            #expect(document?["openapi"] as? String == "3.1.0")
        }
    }

    @Test func theWorkersProbeServerServesTheOpenAPIDocument() async throws {
        let probes = FunctionApplication.makeProbes(
            http: .init(host: "127.0.0.1", port: 0), serverName: "test", metrics: RuntimeMetrics(),
            readiness: { true }, liveness: { true }, logger: Logger(label: "probes-test"))
        try await probes.test(.router) { client in
            let response = try await client.execute(uri: "/openapi.json", method: .get) { $0 }
            #expect(response.status == .ok)
            #expect(Data(buffer: response.body) == OpenAPIDocument.json)
        }
    }

    /// A request runs on its connection's event loop, not on the cooperative pool: no thread
    /// hands it to another on the way in, to Redis and back, or out.
    @Test func aRequestRunsOnItsConnectionsEventLoop() async throws {
        let seen = Mutex<[Bool]>([])
        let probes = FunctionApplication.makeProbes(
            http: .init(host: "127.0.0.1", port: 0), serverName: "test", metrics: RuntimeMetrics(),
            readiness: {
                let onLoop = MultiThreadedEventLoopGroup.currentEventLoop != nil
                try? await Task.sleep(for: .milliseconds(1))
                seen.withLock { $0 += [onLoop, MultiThreadedEventLoopGroup.currentEventLoop != nil] }
                return true
            },
            liveness: { true }, logger: Logger(label: "probes-test"))
        try await probes.test(.live) { client in
            for _ in 0..<3 {
                let status = try await client.execute(uri: "/readyz", method: .get) { $0.status }
                #expect(status == .ok)
            }
        }
        #expect(seen.withLock { $0 } == Array(repeating: true, count: 6))
    }

    /// A query's input is its URL: whatever body a GET carries is ignored, unread.
    @Test func aQueryIgnoresItsBody() async throws {
        try await TestGateway.run(readSide: .worker) { gateway in
            let thread = try await gateway.createThread(creator: creator)
            let uri = "/v1/threads/\(thread)?accountId=\(creator)&minVersion=1"
            for (contentType, body) in [
                ("text/plain", "anything at all"), ("application/json", json(["accountId": ULID.generate().rawValue])),
            ] {
                let response = try await gateway.client.execute(
                    uri: uri, method: .get, headers: [.contentType: contentType], body: ByteBuffer(string: body)) { $0 }
                #expect(response.status == .ok, "\(contentType): \(response.text)")
            }
        }
    }

    @Test func aPathServedWithAnotherMethodAnswers405() async throws {
        try await TestGateway.run { gateway in
            let response = try await gateway.get("/v1/threads/\(ULID.generate())/destroy")
            #expect(response.status == .methodNotAllowed)
            #expect(try response.errorCode() == "method_not_allowed")
            #expect(response.headers[.allow] == "POST")
        }
    }

    /// Any method a known path does not take is 405 with `Allow` (RFC 9110), not 404.
    @Test(arguments: [HTTPRequest.Method.put, .patch, .delete, .trace, .options])
    func everyOtherMethodOnAKnownPathAnswers405WithAllow(method: HTTPRequest.Method) async throws {
        try await TestGateway.run { gateway in
            for (path, allowed) in [
                ("/v1/threads/\(ULID.generate())", "GET"), ("/v1/threads/create", "POST"),
                ("/function/add-messages", "POST"), ("/healthz", "GET"), ("/openapi.json", "GET"),
            ] {
                let response = try await gateway.client.execute(uri: path, method: method) { $0 }
                #expect(response.status == .methodNotAllowed, "\(method) \(path)")
                #expect(response.headers[.allow] == allowed, "\(method) \(path)")
                #expect(try response.errorCode() == "method_not_allowed")
            }
        }
    }

    /// A 500 never tells the client what broke: the code and the sentence are fixed.
    @Test func anInternalFailureAnswersTheFixedText() async throws {
        try await TestGateway.run { gateway in
            let thread = try await gateway.createThread(creator: creator)
            // An entry the store cannot decode, as a corrupted stream would hold. Not a post: a
            // post lands after posts without reading them, this one must be loaded.
            _ = try await gateway.redis.send(RedisCommand(
                "XADD", gateway.layout.threadStream(thread), "2-0", "type", "MemberIdsJoined", "at", "1",
                "actor", creator.rawValue, "cmd", "c", "data", "not json"))
            let response = try await gateway.addMessage("hi", by: creator, to: thread)
            #expect(response.status == .internalServerError)
            let body = try JSONDecoder().decode(ErrorBody.self, from: Data(buffer: response.body))
            #expect(body.error == ErrorBody.Detail(code: "internal_error", message: "internal error"))
        }
    }

    /// Forty writers on one thread with a single attempt each: those that
    /// find the version moved answer 409 conflict and write nothing.
    @Test func retriesRunningOutAnswer409Conflict() async throws {
        var logger = Logger(label: "conflict-test")
        logger.logLevel = .critical
        let pool = RedisConnectionPool(configuration: try RedisConfiguration(url: TestRedis.url), logger: logger)
        let layout = KeyLayout(namespace: TestRedis.uniqueNamespace("conflict"), partitionCount: 4)
        let store = RedisEventStore(redis: pool, layout: layout, logger: logger)
        // The contention comes from "another process": a join appended just before every
        // append of ours, at the version it expects, so every single attempt conflicts.
        let contended = InterferingStore(base: store, interloper: creator)
        var runnerConfiguration = CommandRunner.Configuration()
        runnerConfiguration.maximumAttempts = 1
        let application = try FunctionApplication.make(
            configuration: RuntimeConfiguration(http: .init(host: "127.0.0.1", port: 0), mode: .gateway),
            authentication: .none,
            dependencies: FunctionDependencies(
                commandRunner: CommandRunner(store: contended, configuration: runnerConfiguration, logger: logger),
                createReservations: UnusedReservations()),
            metrics: RuntimeMetrics(), readiness: { true }, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            defer { group.cancelAll() }
            try await application.test(.router) { client in
                let writers = (0..<8).map { _ in ULID.generate() }
                let created = try await client.execute(
                    uri: "/v1/threads/create", method: .post, headers: [.contentType: "application/json"],
                    body: ByteBuffer(string: json(["accountId": creator.rawValue, "title": "contended", "memberIds": writers.map(\.rawValue)])))
                let thread = try created.answer().threadId
                let answers = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String).self) { requests in
                    for writer in writers {
                        requests.addTask {
                            let response = try await client.execute(
                                uri: "/v1/threads/\(thread)/messages/add", method: .post, headers: [.contentType: "application/json"],
                                body: ByteBuffer(string: json(["accountId": writer.rawValue, "messages": [["text": "hi"]]])))
                            return (response.status, response.status == .ok ? "" : try response.errorCode())
                        }
                    }
                    return try await requests.reduce(into: [(HTTPResponse.Status, String)]()) { $0.append($1) }
                }
                #expect(answers.allSatisfy { $0 == (.conflict, "conflict") }, "every writer ran out of its single attempt: \(answers)")
                let later = try await store.events(of: thread, after: 1, limit: 1_000)
                #expect(!later.isEmpty && later.allSatisfy { $0.actor == creator }, "the interloper's joins only: a conflict writes nothing")
            }
        }
    }

    @Test func anUnknownSingleFunctionIsAConfigurationError() {
        #expect(throws: RuntimeConfigurationError.self) {
            try FunctionApplication.make(
                configuration: RuntimeConfiguration(http: .init(host: "127.0.0.1", port: 0), mode: .single(name: "nope")),
                authentication: .none,
                dependencies: FunctionDependencies(
                    commandRunner: CommandRunner(store: InMemoryEventStore(), logger: Logger(label: "test")),
                    createReservations: UnusedReservations()),
                metrics: RuntimeMetrics(), readiness: { true }, logger: Logger(label: "test"))
        }
    }
}

private struct UnusedReservations: CreateReservations {
    func reserveThreadId(_ candidate: ThreadID, for account: AccountID, idempotencyKey: String) async throws(FunctionError) -> ThreadID {
        candidate
    }
}
