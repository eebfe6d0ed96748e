@testable import FunctionRuntime
import HTTPTypes
import Testing

/// Which route a path and method reach, with the path's parameters: the
/// rules Hummingbird's router followed for these routes, byte by byte.
@Suite struct RouteMatcherTests {
    /// The shapes of the registry's routes, added with `{threadId}` before
    /// `create` so that specificity, not order, decides between them.
    static func routes() -> RouteMatcher<String> {
        var routes = RouteMatcher<String>()
        routes.add("/healthz", method: .get, "healthz")
        routes.add("/v1/threads/{threadId}", method: .get, "get-thread")
        routes.add("/v1/threads/{threadId}", method: .post, "refuse get-thread's other method")
        routes.add("/v1/threads/create", method: .post, "create-thread")
        routes.add("/v1/threads/{threadId}/messages/add", method: .post, "add-messages")
        routes.add("/function/{name}", method: .post, "invoke")
        routes.add("/", method: .post, "root")
        return routes
    }

    func match(_ path: String, _ method: HTTPRequest.Method) -> (String, [String])? {
        Self.routes().match(path, method: method).map { match in
            (match.handler, match.parameters.map { "\($0.name)=\($0.value)" })
        }
    }

    @Test func aLiteralPathReachesItsHandler() {
        #expect(match("/healthz", .get)?.0 == "healthz")
        #expect(match("/", .post)?.0 == "root")
    }

    @Test func emptyComponentsAreSkipped() {
        #expect(match("//healthz/", .get)?.0 == "healthz")
        #expect(match("/v1//threads/01J0000000000000000000000A/", .get)?.1 == ["threadId=01J0000000000000000000000A"])
        #expect(match("", .post)?.0 == "root")
    }

    @Test func parametersTakeTheirComponent() {
        let added = match("/v1/threads/01J0000000000000000000000A/messages/add", .post)
        #expect(added?.0 == "add-messages")
        #expect(added?.1 == ["threadId=01J0000000000000000000000A"])
        #expect(match("/function/get-thread", .post)?.1 == ["name=get-thread"])
        #expect(match("/function/gét", .post)?.1 == ["name=gét"])
    }

    @Test func aLiteralComponentWinsOverAParameter() {
        #expect(match("/v1/threads/create", .post)?.0 == "create-thread")
        #expect(match("/v1/threads/created", .post)?.0 == "refuse get-thread's other method")
        // The literal route is the one reached: it has no GET.
        #expect(match("/v1/threads/create", .get) == nil)
    }

    @Test func anUnknownPathOrMethodMatchesNothing() {
        #expect(match("/healthz", .post) == nil)
        #expect(match("/healthz/more", .get) == nil)
        #expect(match("/v1/threads", .get) == nil)
        #expect(match("/v1/threads/x/messages/remove", .post) == nil)
        #expect(match("/HEALTHZ", .get) == nil)
        #expect(match("/v1/threads/01J0000000000000000000000A/messages/add", .get) == nil)
    }
}
