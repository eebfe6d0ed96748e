import HTTPTypes

/// The routes of a function process, and which one a request's path and
/// method reach. A path splits at `/` with empty components skipped (so
/// `/healthz/` is `/healthz`, as with Hummingbird's router); a component of
/// a route written `{name}` takes any one component as parameter `name`.
/// Where routes match the same path, literal components win over
/// parameters, left to right: `/v1/threads/create` before
/// `/v1/threads/{threadId}`.
///
/// It compares UTF-8 bytes: Hummingbird's router walked the path one
/// `Character` at a time, 24,000 of a get-thread's 325,000 instructions
/// (docs/PERFORMANCE.md).
struct RouteMatcher<Handler: Sendable>: Sendable {
    struct Match {
        var handler: Handler
        /// The `{name}` components, in path order.
        var parameters: [(name: String, value: Substring)]
    }

    private enum Component: Sendable, Hashable {
        case literal([UInt8])
        case parameter(String)
    }

    private struct Route: Sendable {
        var components: [Component]
        var handlers: [HTTPRequest.Method: Handler]
    }

    /// Routes by their number of components, in the order added.
    private var routes: [Int: [Route]] = [:]

    init() {}

    /// Adds `handler` for `method` on `path`; a path takes one handler per method.
    mutating func add(_ path: String, method: HTTPRequest.Method, _ handler: Handler) {
        let components: [Component] = path.split(separator: "/").map { component in
            component.hasPrefix("{") && component.hasSuffix("}") && component.count > 2
                ? .parameter(String(component.dropFirst().dropLast())) : .literal(Array(component.utf8))
        }
        var sameLength = routes[components.count, default: []]
        if let index = sameLength.firstIndex(where: { $0.components == components }) {
            precondition(sameLength[index].handlers[method] == nil, "\(method) \(path) has a handler already")
            sameLength[index].handlers[method] = handler
        } else {
            sameLength.append(Route(components: components, handlers: [method: handler]))
        }
        routes[components.count] = sameLength
    }

    /// The handler of `method` on the route `path` reaches, with the route's
    /// parameters; nil when no route matches the path or the route has no
    /// handler for `method`.
    func match(_ path: String, method: HTTPRequest.Method) -> Match? {
        let bytes = path.utf8
        var ranges: [Range<String.Index>] = []
        var index = bytes.startIndex
        while index < bytes.endIndex {
            guard bytes[index] != UInt8(ascii: "/") else {
                index = bytes.index(after: index)
                continue
            }
            let start = index
            while index < bytes.endIndex, bytes[index] != UInt8(ascii: "/") { index = bytes.index(after: index) }
            ranges.append(start..<index)
        }
        guard let candidates = routes[ranges.count] else { return nil }
        var best: Route?
        for route in candidates where Self.matches(route.components, bytes, ranges) {
            if let current = best, !Self.isMoreSpecific(route.components, than: current.components) { continue }
            best = route
        }
        guard let best, let handler = best.handlers[method] else { return nil }
        var parameters: [(name: String, value: Substring)] = []
        for (component, range) in zip(best.components, ranges) {
            if case .parameter(let name) = component { parameters.append((name, path[range])) }
        }
        return Match(handler: handler, parameters: parameters)
    }

    private static func matches(_ components: [Component], _ bytes: String.UTF8View, _ ranges: [Range<String.Index>]) -> Bool {
        for (component, range) in zip(components, ranges) {
            guard case .literal(let literal) = component else { continue }
            guard bytes[range].elementsEqual(literal) else { return false }
        }
        return true
    }

    /// The first component where the two differ is a literal in `route`.
    private static func isMoreSpecific(_ route: [Component], than other: [Component]) -> Bool {
        for (mine, theirs) in zip(route, other) {
            switch (mine, theirs) {
            case (.literal, .parameter): return true
            case (.parameter, .literal): return false
            default: continue
            }
        }
        return false
    }
}
