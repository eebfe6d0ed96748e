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
        /// A handful each: a list compares methods without hashing them.
        var handlers: [(method: HTTPRequest.Method, handler: Handler)]
    }

    /// Routes by their number of components (the index), in the order added.
    private var routes: [[Route]] = []

    init() {}

    /// Adds `handler` for `method` on `path`; a path takes one handler per method.
    mutating func add(_ path: String, method: HTTPRequest.Method, _ handler: Handler) {
        let components: [Component] = path.split(separator: "/").map { component in
            component.hasPrefix("{") && component.hasSuffix("}") && component.count > 2
                ? .parameter(String(component.dropFirst().dropLast())) : .literal(Array(component.utf8))
        }
        while routes.count <= components.count { routes.append([]) }
        if let index = routes[components.count].firstIndex(where: { $0.components == components }) {
            precondition(!routes[components.count][index].handlers.contains { $0.method == method }, "\(method) \(path) has a handler already")
            routes[components.count][index].handlers.append((method, handler))
        } else {
            routes[components.count].append(Route(components: components, handlers: [(method, handler)]))
        }
    }

    /// The handler of `method` on the route `path` reaches, with the route's
    /// parameters; nil when no route matches the path or the route has no
    /// handler for `method`.
    func match(_ path: String, method: HTTPRequest.Method) -> Match? {
        var path = path
        path.makeContiguousUTF8()
        return path.utf8.withContiguousStorageIfAvailable { bytes in match(bytes, of: path, method: method) } ?? nil
    }

    private func match(_ bytes: UnsafeBufferPointer<UInt8>, of path: String, method: HTTPRequest.Method) -> Match? {
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(8)
        var index = 0
        while index < bytes.count {
            guard bytes[index] != UInt8(ascii: "/") else {
                index += 1
                continue
            }
            let start = index
            while index < bytes.count, bytes[index] != UInt8(ascii: "/") { index += 1 }
            ranges.append(start..<index)
        }
        guard ranges.count < routes.count else { return nil }
        var best: Route?
        for route in routes[ranges.count] where Self.matches(route.components, bytes, ranges) {
            if let current = best, !Self.isMoreSpecific(route.components, than: current.components) { continue }
            best = route
        }
        guard let best, let handler = best.handlers.first(where: { $0.method == method })?.handler else { return nil }
        var parameters: [(name: String, value: Substring)] = []
        for (component, range) in zip(best.components, ranges) {
            guard case .parameter(let name) = component else { continue }
            let utf8 = path.utf8
            let start = utf8.index(utf8.startIndex, offsetBy: range.lowerBound)
            parameters.append((name, Substring(utf8[start..<utf8.index(start, offsetBy: range.count)])))
        }
        return Match(handler: handler, parameters: parameters)
    }

    private static func matches(_ components: [Component], _ bytes: UnsafeBufferPointer<UInt8>, _ ranges: [Range<Int>]) -> Bool {
        for (component, range) in zip(components, ranges) {
            guard case .literal(let literal) = component else { continue }
            guard range.count == literal.count, bytes[range].elementsEqual(literal) else { return false }
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
