import EventStore
import Foundation
import FunctionRuntime
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
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

    @Test func anUnknownSingleFunctionIsAConfigurationError() {
        #expect(throws: RuntimeConfigurationError.self) {
            try FunctionApplication.make(
                configuration: RuntimeConfiguration(http: .init(host: "127.0.0.1", port: 0), mode: .single(name: "nope")),
                dependencies: FunctionDependencies(
                    commandRunner: CommandRunner(store: InMemoryEventStore(), logger: Logger(label: "test")),
                    createReservations: UnusedReservations()),
                metrics: RuntimeMetrics(), readiness: { true }, logger: Logger(label: "test"))
        }
    }
}

private struct UnusedReservations: CreateReservations {
    func reserveThreadId(_ candidate: ThreadID, idempotencyKey: String) async throws(FunctionError) -> ThreadID {
        candidate
    }
}
