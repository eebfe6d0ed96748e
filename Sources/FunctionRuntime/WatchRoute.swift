import EventStore
import Foundation
import HTTPTypes
import Hummingbird
import ThreadDomain
import ThreadFunctions

/// `GET /v1/threads/{threadId}/events?accountId=`: watch-thread as
/// server-sent events. Each event is written as
/// `id: <version>\nevent: <type>\ndata: <json>\n\n`; a client that reconnects
/// with `Last-Event-ID` (or `?lastEventId=`) resumes after that version
/// without loss or repeats. A `: ping` comment goes out while the thread is
/// quiet; the stream ends when the thread is destroyed, the account stops
/// taking part, or the client goes away (noticed when its side of the
/// connection closes, or at the next write).
struct WatchRoute: Sendable {
    /// Its registry entry: the route and the name metrics use.
    let entry: FunctionEntry
    let handler: WatchThreadHandler
    let authentication: Authentication
    let metrics: RuntimeMetrics

    /// The REST route of DESIGN §4.
    func addRoute(to routes: inout RouteTable.Routes) {
        routes.add(entry.route, method: .get) { request, context, parameters in
            await respond(to: request, context: context, threadId: parameters.first { $0.name == "threadId" }?.value)
        }
    }

    /// Single-function mode: `GET /?threadId=&accountId=` as well (SSE is a
    /// GET, so the root takes its parameters from the query string, not a body).
    func addRootRoute(to routes: inout RouteTable.Routes) {
        routes.add("/", method: .get) { request, context, _ in
            await respond(to: request, context: context, threadId: nil)
        }
    }

    /// `threadId`: the path's, where the route has one.
    private func respond(to request: Request, context: FunctionRequestContext, threadId: Substring?) async -> Response {
        let started = ContinuousClock.now
        let feed: ThreadFeed
        do throws(FunctionError) {
            let input = try await input(of: request, threadId: threadId)
            feed = try await handler.handle(
                input, context: FunctionContext(requestId: context.requestId, logger: context.logger))
        } catch {
            let response = ErrorResponse.response(for: error)
            metrics.recordAnswer(function: entry.name, status: response.status, since: started, logger: context.logger)
            return response
        }
        metrics.recordAnswer(function: entry.name, status: .ok, since: started, logger: context.logger)

        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let logger = context.logger
        let channel = context.channel
        let metrics = metrics
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                metrics.streamOpened()
                defer {
                    feed.stop()
                    metrics.streamClosed()
                }
                await ClientDisconnect.watch(channel) { feed.stop() }
                do {
                    // A first comment gets the head and a byte to the client at once.
                    try await writer.write(ByteBuffer(string: ": watching thread \(feed.threadId) after version \(feed.after)\n\n"))
                    try await feed.run { item in
                        try await writer.write(ByteBuffer(string: Self.serverSentEvent(item)))
                    }
                } catch {
                    // The client went away or Redis failed mid-stream: the stream just ends.
                    logger.debug("watch ended", metadata: ["thread": "\(feed.threadId)", "error": "\(error)"])
                }
                await ClientDisconnect.stopWatching(channel)
                try await writer.finish(nil)
            })
    }

    static func serverSentEvent(_ item: ThreadWatcher.Item) -> String {
        switch item {
        case .heartbeat:
            return ": ping\n\n"
        case .event(let update):
            // Event data is compact JSON: one line, so one `data:` field.
            return "id: \(update.version)\nevent: \(update.type)\ndata: \(update.data)\n\n"
        }
    }

    private func input(of request: Request, threadId: Substring?) async throws(FunctionError) -> WatchThreadInput {
        let query = request.uri.queryParameters
        // EventSource cannot set headers, so the token may come as `?access_token=` (never logged).
        let actingAccount = try await authentication.actingAccount(
            authorization: request.headers.value(of: .authorization), queryToken: query["access_token"].map(String.init))
        let threadParameter = (threadId ?? query["threadId"]).map(String.init)
        guard let threadParameter else { throw FunctionError(.invalidRequest, "threadId is required") }
        guard let threadId = ThreadID(threadParameter) else {
            throw FunctionError(.invalidRequest, "threadId is not a ULID (26 Crockford base32 characters)")
        }
        let named = query[Substring(Invocation.actingAccountField)].map(String.init)
        let accountId: AccountID
        if let actingAccount {
            try InvocationReader.checkNamedAccount(named, is: actingAccount)
            accountId = actingAccount
        } else {
            guard let named else { throw FunctionError(.invalidRequest, "accountId is required") }
            guard let account = AccountID(named) else {
                throw FunctionError(.invalidRequest, "accountId is not a ULID (26 Crockford base32 characters)")
            }
            accountId = account
        }
        var lastEventId: QueryInteger?
        if let text = request.headers.value(of: .lastEventID) ?? query["lastEventId"].map(String.init) {
            guard let version = Int64(text.trimmingCharacters(in: .whitespaces)) else {
                throw FunctionError(.invalidRequest, "Last-Event-ID must be a version (an integer)")
            }
            lastEventId = QueryInteger(version)
        }
        return WatchThreadInput(threadId: threadId, accountId: accountId, lastEventId: lastEventId)
    }
}

extension HTTPField.Name {
    static let lastEventID = Self("Last-Event-ID")!
}
