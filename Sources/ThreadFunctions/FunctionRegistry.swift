public import Foundation

/// Every function this binary can serve, in one list. The HTTP runtime builds
/// its routes from it, `threadweave function <name>` looks names up in it, and
/// the deployment tests compare it with `functions/*.json`.
///
/// Adding a function is one line here: its handler type, method and route.
public enum FunctionRegistry {
    public static let entries: [FunctionEntry] = [
        FunctionEntry(CreateThreadHandler.self, .post, "/v1/threads/create"),
        FunctionEntry(DestroyThreadHandler.self, .post, "/v1/threads/{threadId}/destroy"),
        FunctionEntry(JoinAdministratorsHandler.self, .post, "/v1/threads/{threadId}/administrator-ids/join"),
        FunctionEntry(LeaveAdministratorsHandler.self, .post, "/v1/threads/{threadId}/administrator-ids/leave"),
        FunctionEntry(JoinMembersHandler.self, .post, "/v1/threads/{threadId}/member-ids/join"),
        FunctionEntry(LeaveMembersHandler.self, .post, "/v1/threads/{threadId}/member-ids/leave"),
        FunctionEntry(AddMessagesHandler.self, .post, "/v1/threads/{threadId}/messages/add"),
        FunctionEntry(RemoveMessagesHandler.self, .post, "/v1/threads/{threadId}/messages/remove"),
        FunctionEntry(GetThreadHandler.self, .get, "/v1/threads/{threadId}"),
        FunctionEntry(ListThreadsHandler.self, .get, "/v1/threads"),
        FunctionEntry(ListAdministratorsHandler.self, .get, "/v1/threads/{threadId}/administrator-ids"),
        FunctionEntry(ListMembersHandler.self, .get, "/v1/threads/{threadId}/member-ids"),
        FunctionEntry(ListMessagesHandler.self, .get, "/v1/threads/{threadId}/messages"),
        FunctionEntry(WatchThreadHandler.self, .get, "/v1/threads/{threadId}/events"),
    ]

    public static var names: [String] { entries.map(\.name) }

    public static func entry(named name: String) -> FunctionEntry? {
        entries.first { $0.name == name }
    }
}

/// A function a registry entry can build from the process's shared dependencies.
public protocol RegistrableFunction: ThreadFunction {
    init(dependencies: FunctionDependencies)
}

public enum FunctionMethod: String, Sendable, Hashable {
    case get = "GET"
    case post = "POST"
}

/// One function's name, kind and REST route (`{name}` marks a path parameter),
/// plus a way to bind its handler to dependencies.
public struct FunctionEntry: Sendable {
    public let name: String
    public let kind: FunctionKind
    public let method: FunctionMethod
    public let route: String
    /// The names of the route's path parameters, in order (`["threadId"]`);
    /// read on every request, so split once.
    public let pathParameters: [String]
    /// Success answers 201 rather than 200.
    public let createsResource: Bool
    /// The handler's type name, as `functions/<name>.json` records it.
    public let handlerTypeName: String
    private let makeInvoke: @Sendable (FunctionDependencies) -> BoundFunction.Invoke

    public init<Handler: RegistrableFunction>(_ handler: Handler.Type, _ method: FunctionMethod, _ route: String) {
        self.name = Handler.name
        self.kind = Handler.kind
        self.method = method
        self.route = route
        self.pathParameters = route.split(separator: "/").compactMap { segment in
            segment.hasPrefix("{") && segment.hasSuffix("}") ? String(segment.dropFirst().dropLast()) : nil
        }
        self.createsResource = Handler.createsResource
        self.handlerTypeName = String(describing: Handler.self)
        self.makeInvoke = { dependencies in
            let function = Handler(dependencies: dependencies)
            return { (invocation, context) async throws(FunctionError) -> FunctionOutput in
                let input: Handler.Input = try InvocationCoding.decode(invocation)
                let output = try await function.handle(input, context: context)
                return FunctionOutput(
                    json: try InvocationCoding.encode(output), readModelVersion: (output as? any ReadModelVersioned)?.version)
            }
        }
    }

    public func bind(_ dependencies: FunctionDependencies) -> BoundFunction {
        BoundFunction(entry: self, invoke: makeInvoke(dependencies))
    }
}

/// A registry entry with its handler built: a transport-free, type-erased call.
public struct BoundFunction: Sendable {
    /// Takes the invocation, answers the output's JSON.
    public typealias Invoke = @Sendable (Invocation, FunctionContext) async throws(FunctionError) -> FunctionOutput

    public let entry: FunctionEntry
    private let invoke: Invoke

    init(entry: FunctionEntry, invoke: @escaping Invoke) {
        self.entry = entry
        self.invoke = invoke
    }

    public func callAsFunction(_ invocation: Invocation, context: FunctionContext) async throws(FunctionError) -> FunctionOutput {
        try await invoke(invocation, context)
    }
}

/// What a function answered: its JSON, and the read-model version it was read
/// at when it is a thread query (the edge sends that as `ETag`).
public struct FunctionOutput: Sendable {
    public var json: Data
    public var readModelVersion: Int64?
}

/// An output read from one thread's read model at one version. list-threads
/// spans many threads and has no single version, so it is not one.
public protocol ReadModelVersioned {
    var version: Int64 { get }
}
