import EventStore
import Foundation
import FunctionRuntime
import HTTPTypes
import HummingbirdTesting
import Logging
import RedisClient
import RedisTestSupport
import Testing
import ThreadDomain
import ThreadFunctions

/// watch-thread over a real socket: events written by commands arrive as SSE
/// frames, a reconnect with `Last-Event-ID` gets exactly the missed events,
/// and refusals keep the error shape. Every test destroys its thread at the
/// end, which ends any watch still open on the server (one whose client left
/// ends at that write), so the server stops promptly.
@Suite(.timeLimit(.minutes(2))) struct ServerSentEventsTests {
    let creator = ULID.generate()
    let member = ULID.generate()

    @Test func eventsArriveAsTheyAreWrittenAndAReconnectResumesWithoutLossOrRepeats() async throws {
        try await TestGateway.run(testing: .live) { gateway in
            let port = try #require(gateway.client.port)
            let thread = try await gateway.createThread(creator: creator, members: [member])
            let path = "/v1/threads/\(thread)/events?accountId=\(member)"

            let first = try await EventStreamClient.get(port: port, path)
            #expect(first.status == 200)
            #expect(first.headers["content-type"] == "text/event-stream")
            _ = try await gateway.addMessage("live one", by: creator, to: thread)
            _ = try await gateway.post(
                "/v1/threads/\(thread)/member-ids/join", json(["accountId": creator.rawValue, "accountIds": [ULID.generate().rawValue]]))

            let added = try #require(try await first.nextEvent())
            #expect(added.id == "2")
            #expect(added.event == "MessagesAdded")
            let data = try #require(try JSONSerialization.jsonObject(with: Data(added.data.utf8)) as? [String: Any])
            let messages = try #require(data["messages"] as? [[String: Any]])
            #expect(messages.first?["text"] as? String == "live one")
            let joined = try #require(try await first.nextEvent())
            #expect(joined.id == "3")
            #expect(joined.event == "MemberIdsJoined")
            first.disconnect()

            // Missed while away.
            _ = try await gateway.addMessage("missed one", by: creator, to: thread)
            _ = try await gateway.addMessage("missed two", by: member, to: thread)

            let resumed = try await EventStreamClient.get(port: port, path, headers: ["Last-Event-ID": "3"])
            #expect(resumed.status == 200)
            _ = try await gateway.addMessage("after the reconnect", by: creator, to: thread)
            let destroyed = try await gateway.post("/v1/threads/\(thread)/destroy", json(["accountId": creator.rawValue]))
            #expect(destroyed.status == .ok)

            // Everything after 3, once each, then the stream ends after ThreadDestroyed.
            var seen: [ServerSentEvent] = []
            while let event = try await resumed.nextEvent() { seen.append(event) }
            #expect(seen.map(\.id) == ["4", "5", "6", "7"])
            #expect(seen.map(\.event) == ["MessagesAdded", "MessagesAdded", "MessagesAdded", "ThreadDestroyed"])
            #expect(seen[0].data.contains("missed one") && seen[1].data.contains("missed two"))
            #expect(seen[2].data.contains("after the reconnect"))
            resumed.disconnect()
        }
    }

    @Test func aNonParticipantGets403WithTheErrorShape() async throws {
        try await TestGateway.run(testing: .live) { gateway in
            let port = try #require(gateway.client.port)
            let thread = try await gateway.createThread(creator: creator, members: [member])
            let stranger = try await EventStreamClient.get(port: port, "/v1/threads/\(thread)/events?accountId=\(ULID.generate())")
            #expect(stranger.status == 403)
            #expect(stranger.headers["content-type"] == "application/json")
            let body = try await stranger.body()
            stranger.disconnect()
            let error = try JSONDecoder().decode(ErrorBody.self, from: Data(body.utf8))
            #expect(error.error.code == "not_participant")

            let badResume = try await EventStreamClient.get(
                port: port, "/v1/threads/\(thread)/events?accountId=\(member)", headers: ["Last-Event-ID": "yesterday"])
            #expect(badResume.status == 400)
            #expect(try JSONDecoder().decode(ErrorBody.self, from: Data(try await badResume.body().utf8)).error.code == "invalid_request")
            badResume.disconnect()
        }
    }

    /// `threadweave function watch-thread`: the SSE route, `GET /` with query
    /// parameters, and health, readiness and metrics; nothing else.
    @Test func aSingleWatchThreadProcessServesTheStreamOnItsRouteAndOnRoot() async throws {
        try await TestGateway.run(mode: .single(name: "watch-thread"), testing: .live) { gateway in
            let port = try #require(gateway.client.port)
            // Commands are not served here: write through the store.
            let runner = CommandRunner(store: RedisEventStore(redis: gateway.redis, layout: gateway.layout, logger: .init(label: "test")),
                                       logger: .init(label: "test"))
            let thread = ULID.generate()
            _ = try await runner.run(CommandRequest(
                threadId: thread, command: .createThread(CreateThread(threadId: thread, creatorId: creator, title: "t", memberIds: [member])),
                actor: creator))

            let viaRoot = try await EventStreamClient.get(port: port, "/?threadId=\(thread)&accountId=\(member)")
            let viaRoute = try await EventStreamClient.get(port: port, "/v1/threads/\(thread)/events?accountId=\(member)")
            #expect(viaRoot.status == 200 && viaRoute.status == 200)
            _ = try await runner.run(CommandRequest(threadId: thread, command: .destroyThread, actor: creator))
            for client in [viaRoot, viaRoute] {
                let event = try #require(try await client.nextEvent())
                #expect(event.id == "2" && event.event == "ThreadDestroyed")
                #expect(try await client.nextEvent() == nil)
                client.disconnect()
            }

            let missing = try await gateway.get("/?accountId=\(member)")
            #expect(missing.status == .badRequest)
            #expect(try missing.errorCode() == "invalid_request")
            #expect(try await gateway.get("/healthz").status == .ok)
            #expect(try await gateway.get("/readyz").status == .ok)
            let metrics = try await gateway.get("/metrics")
            #expect(metrics.text.contains(#"threadweave_function_requests_total{function="watch-thread",status="200"} 2"#))
            #expect(try await gateway.get("/v1/threads/\(thread)?accountId=\(member)").status == .notFound)
            #expect(try await gateway.post("/v1/threads/create", json(["accountId": creator.rawValue, "title": "t"])).status == .notFound)
        }
    }

    /// The stream ends when its client leaves, not at the next heartbeat (15 s): the
    /// open-streams gauge, and so the stream's place in the hub, drop within seconds.
    @Test func aClientThatGoesAwayIsNoticedWithinSeconds() async throws {
        try await TestGateway.run(testing: .live) { gateway in
            let port = try #require(gateway.client.port)
            let thread = try await gateway.createThread(creator: creator)
            let watch = try await EventStreamClient.get(port: port, "/v1/threads/\(thread)/events?accountId=\(creator)")
            #expect(watch.status == 200)
            #expect(try await eventually(within: .seconds(2)) { gateway.openStreams == 1 })
            watch.disconnect()
            #expect(try await eventually(within: .seconds(3)) { gateway.openStreams == 0 }, "the stream outlived its client")
        }
    }

    /// Limits on open streams: per account (here 2) and per process (here 3),
    /// answered 429 `too_many_streams` with `Retry-After`; a closed stream frees its place.
    @Test func streamsBeyondTheAccountsOrTheProcesssLimitAre429() async throws {
        let limits = ThreadWatcher.Limits(maximumStreams: 3, maximumStreamsPerAccount: 2)
        try await TestGateway.run(testing: .live, watchLimits: limits) { gateway in
            let port = try #require(gateway.client.port)
            let others = [ULID.generate(), ULID.generate()]
            let thread = try await gateway.createThread(creator: creator, members: [member] + others)
            func watch(as account: AccountID) async throws -> EventStreamClient {
                try await EventStreamClient.get(port: port, "/v1/threads/\(thread)/events?accountId=\(account)")
            }
            let first = try await watch(as: creator)
            let second = try await watch(as: creator)
            let third = try await watch(as: creator)
            #expect(first.status == 200 && second.status == 200)
            #expect(third.status == 429)
            #expect(third.headers["retry-after"] == "1")
            #expect(try JSONDecoder().decode(ErrorBody.self, from: Data(try await third.body().utf8)).error.code == "too_many_streams")
            third.disconnect()

            let fromMember = try await watch(as: member)
            #expect(fromMember.status == 200, "another account has places of its own")
            let overProcess = try await watch(as: others[0])
            #expect(overProcess.status == 429, "the process holds its maximum")
            overProcess.disconnect()

            first.disconnect()
            #expect(try await eventually(within: .seconds(3)) { gateway.openStreams == 2 })
            let again = try await watch(as: others[1])
            #expect(again.status == 200, "a closed stream frees its place")
            for client in [second, fromMember, again] { client.disconnect() }
        }
    }

    /// The lane's Redis connection comes before the 200: a server that refuses
    /// new clients (`maxclients`) makes a watch that needs a new lane answer
    /// 503, not an empty 200; watches on a lane that has its connection go on.
    @Test func aWatchThatGetsNoRedisConnectionIs503() async throws {
        try await RedisTestServer.with(arguments: ["--maxclients", "2"]) { server in
            // One pooled connection: requests on either event loop share it, so the count is known.
            try await TestGateway.run(redisURL: server.url, testing: .live, redisConnections: 1) { gateway in
                let port = try #require(gateway.client.port)
                let watcher = try #require(gateway.watcher)
                let thread = try await gateway.createThread(creator: creator)
                var elsewhere = try await gateway.createThread(creator: creator)
                while try await watcher.lane(of: elsewhere) == watcher.lane(of: thread) {
                    elsewhere = try await gateway.createThread(creator: creator)
                }
                let holding = try await EventStreamClient.get(port: port, "/v1/threads/\(thread)/events?accountId=\(creator)")
                #expect(holding.status == 200, "the pool's connection and this watch's lane fill the server")
                let sameLane = try await EventStreamClient.get(port: port, "/v1/threads/\(thread)/events?accountId=\(creator)")
                #expect(sameLane.status == 200, "a second watch on the lane needs no connection of its own")
                let refused = try await EventStreamClient.get(port: port, "/v1/threads/\(elsewhere)/events?accountId=\(creator)")
                #expect(refused.status == 503)
                #expect(refused.headers["retry-after"] == "1")
                #expect(try JSONDecoder().decode(ErrorBody.self, from: Data(try await refused.body().utf8)).error.code == "unavailable")
                refused.disconnect()
                sameLane.disconnect()
                holding.disconnect()
                #expect(try await eventually(within: .seconds(3)) { gateway.openStreams == 0 })
            }
        }
    }

    /// Many streams share the hub's lanes: 40 watches on 20 threads hold at
    /// most one Redis connection per lane, and each stream gets its thread's
    /// events once, in order.
    @Test func manyStreamsShareAFewRedisConnections() async throws {
        try await RedisTestServer.with { server in
            try await TestGateway.run(redisURL: server.url, testing: .live, watchLanes: 2) { gateway in
                let port = try #require(gateway.client.port)
                // Two watchers of their own per thread: the per-account limit (16) stays out of the way.
                var threads: [(id: ThreadID, watchers: [AccountID])] = []
                for _ in 0..<20 {
                    let watchers = [ULID.generate(), ULID.generate()]
                    threads.append((try await gateway.createThread(creator: creator, members: watchers), watchers))
                }
                var watches: [(thread: ThreadID, client: EventStreamClient)] = []
                for (thread, watchers) in threads {
                    for account in watchers {
                        let client = try await EventStreamClient.get(port: port, "/v1/threads/\(thread)/events?accountId=\(account)")
                        #expect(client.status == 200)
                        watches.append((thread, client))
                    }
                }
                // The gauge moves in each stream's body, which may start after its 200 is read.
                #expect(try await eventually(within: .seconds(3)) { gateway.openStreams == 40 })
                #expect(try #require(gateway.watcher).connectionCount <= 2)
                // The server's clients: the pool's own, and the lanes'.
                #expect(try await connectedClients(gateway) - gateway.redis.openConnectionCount <= 2, "a Redis connection per stream")
                for (thread, _) in threads { _ = try await gateway.addMessage("to \(thread)", by: creator, to: thread) }
                for (thread, watchers) in threads { _ = try await gateway.addMessage("again", by: watchers[0], to: thread) }
                for (thread, client) in watches {
                    let first = try #require(try await client.nextEvent())
                    let second = try #require(try await client.nextEvent())
                    #expect([first.id, second.id] == ["2", "3"])
                    #expect(first.data.contains("to \(thread)") && second.data.contains("again"))
                    client.disconnect()
                }
                #expect(try await eventually(within: .seconds(3)) { gateway.openStreams == 0 })
            }
        }
    }

    private func connectedClients(_ gateway: TestGateway) async throws -> Int {
        let info = try await gateway.redis.send(RedisCommand("INFO", "clients")).string ?? ""
        let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("connected_clients:") }
        return Int(line?.split(separator: ":").last ?? "") ?? -1
    }
}

/// Polls `condition` until it holds or `within` passes.
func eventually(within limit: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

extension TestGateway {
    /// The `threadweave_watch_streams_open` gauge of `/metrics`.
    var openStreams: Int {
        let exposition = metrics.registry.emitToString()
        guard let line = exposition.split(separator: "\n").first(where: { $0.hasPrefix("threadweave_watch_streams_open ") }),
                let value = Double(line.split(separator: " ").last ?? "")
        else { return 0 }
        return Int(value)
    }
}
