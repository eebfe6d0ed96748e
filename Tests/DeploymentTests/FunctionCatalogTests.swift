import Foundation
import Testing
@testable import Deployment

/// DESIGN §4's routes table: the contract the descriptors must honour.
let designRoutes: [String: String] = [
    "create-thread": "POST /v1/threads/create",
    "destroy-thread": "POST /v1/threads/{threadId}/destroy",
    "join-administrators": "POST /v1/threads/{threadId}/administrator-ids/join",
    "leave-administrators": "POST /v1/threads/{threadId}/administrator-ids/leave",
    "join-members": "POST /v1/threads/{threadId}/member-ids/join",
    "leave-members": "POST /v1/threads/{threadId}/member-ids/leave",
    "add-messages": "POST /v1/threads/{threadId}/messages/add",
    "remove-messages": "POST /v1/threads/{threadId}/messages/remove",
    "get-thread": "GET /v1/threads/{threadId}",
    "list-threads": "GET /v1/threads",
    "list-administrators": "GET /v1/threads/{threadId}/administrator-ids",
    "list-members": "GET /v1/threads/{threadId}/member-ids",
    "list-messages": "GET /v1/threads/{threadId}/messages",
    "watch-thread": "GET /v1/threads/{threadId}/events",
]

enum RepositoryPaths {
    /// Tests/DeploymentTests/<file>.swift → the package root.
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let functions = root.appendingPathComponent("functions")
    static let generatedManifests = root.appendingPathComponent("k8s/base/functions")
    static let productionOverlay = root.appendingPathComponent("k8s/overlays/production")
}

@Suite struct FunctionCatalogTests {
    @Test func loadsEveryFunctionOfTheDesignWithItsRoute() throws {
        let functions = try FunctionCatalog.load(directory: RepositoryPaths.functions)
        let routes = Dictionary(uniqueKeysWithValues: functions.map { ("\($0.name)", "\($0.method.rawValue) \($0.route)") })
        #expect(functions.count == 14)
        #expect(routes == designRoutes)
        #expect(functions.map(\.name) == functions.map(\.name).sorted())
    }

    @Test func kindsAndScalingAreSensible() throws {
        let functions = try FunctionCatalog.load(directory: RepositoryPaths.functions)
        for function in functions {
            let scaling = function.scaling
            switch function.kind {
            case .command:
                #expect(function.method == .POST, "\(function.name)")
                #expect(scaling.minReplicas >= 2 && scaling.maxReplicas <= 10, "\(function.name)")
            case .query:
                #expect(function.method == .GET, "\(function.name)")
                #expect(scaling.minReplicas >= 2 && scaling.maxReplicas <= 20, "\(function.name)")
            case .stream:
                #expect(function.name == "watch-thread")
            }
            #expect(function.handler.hasSuffix("Handler"), "\(function.name)")
        }
        let watch = try #require(functions.first { $0.name == "watch-thread" })
        #expect(functions.filter { $0.kind != .stream }.allSatisfy { $0.timeoutSeconds < watch.timeoutSeconds })
    }

    @Test func reportsEveryProblemOfABadDescriptor() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try write(
            descriptor(name: "get-thread", kind: "query", method: "POST", route: "/threads/{threadId}", minReplicas: 30),
            to: directory.appendingPathComponent("get-threads.json")
        )

        let error = try #require(throws: FunctionCatalogError.self) {
            try FunctionCatalog.load(directory: directory)
        }
        let reasons = error.problems.map(\.reason)
        #expect(error.problems.allSatisfy { $0.file == "get-threads.json" })
        #expect(reasons.contains(.nameMismatch(name: "get-thread")))
        #expect(reasons.contains(.invalidRoute("/threads/{threadId}", "must start with /v1")))
        #expect(reasons.contains(.methodMismatch(kind: .query, method: .POST)))
        #expect(reasons.contains(.invalidScaling("need minReplicas ≤ maxReplicas, got 30 > 20")))
        #expect(error.description.contains("get-threads.json: route \"/threads/{threadId}\" must start with /v1"))
    }

    @Test func rejectsAnUnknownKindByName() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try write(descriptor(name: "get-thread", kind: "lambda"), to: directory.appendingPathComponent("get-thread.json"))

        let error = try #require(throws: FunctionCatalogError.self) {
            try FunctionCatalog.load(directory: directory)
        }
        let problem = try #require(error.problems.first)
        guard case .malformed(let why) = problem.reason else {
            Issue.record("expected a malformed-descriptor problem, got \(problem)")
            return
        }
        #expect(why == "kind: unknown kind \"lambda\"; expected one of command, query, stream")
    }

    @Test func rejectsMissingFieldsDuplicatesAndBadQuantities() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var withoutHandler = descriptor(name: "list-members")
        withoutHandler["handler"] = nil
        try write(withoutHandler, to: directory.appendingPathComponent("list-members.json"))
        try write(descriptor(name: "a-route"), to: directory.appendingPathComponent("a-route.json"))
        try write(descriptor(name: "b-route", cpuRequest: "2", cpuLimit: "lots"), to: directory.appendingPathComponent("b-route.json"))
        try write(descriptor(name: "c-route", memoryRequest: "1Gi"), to: directory.appendingPathComponent("c-route.json"))

        let error = try #require(throws: FunctionCatalogError.self) {
            try FunctionCatalog.load(directory: directory)
        }
        let problems = Set(error.problems)
        #expect(problems.contains(.init(file: "list-members.json", reason: .malformed("missing field \"handler\""))))
        #expect(problems.contains(.init(file: "b-route.json", reason: .invalidResources("limits.cpu \"lots\" is not a CPU quantity (e.g. 250m or 1)"))))
        #expect(problems.contains(.init(file: "c-route.json", reason: .invalidResources("requests.memory exceeds limits.memory"))))
        #expect(problems.contains(.init(file: "b-route.json", reason: .duplicateRoute("GET /v1/threads/{threadId}", alsoIn: "a-route.json"))))
    }

    /// Streams hold connections while idle, so CPU says nothing about their load; everything else scales on CPU.
    @Test func streamsScaleOnOpenStreamsAndTheRestOnCPU() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var streamOnCPU = descriptor(name: "watch-thread", kind: "stream", route: "/v1/threads/{threadId}/events")
        streamOnCPU["handler"] = "WatchThreadHandler"
        try write(streamOnCPU, to: directory.appendingPathComponent("watch-thread.json"))
        var queryOnStreams = descriptor(name: "get-thread")
        queryOnStreams["scaling"] = ["minReplicas": 2, "maxReplicas": 20, "targetOpenStreamsPerPod": 100]
        try write(queryOnStreams, to: directory.appendingPathComponent("get-thread.json"))

        let error = try #require(throws: FunctionCatalogError.self) {
            try FunctionCatalog.load(directory: directory)
        }
        #expect(Set(error.problems) == [
            .init(file: "watch-thread.json", reason: .invalidScaling("a stream scales on targetOpenStreamsPerPod alone")),
            .init(file: "get-thread.json", reason: .invalidScaling("a query scales on targetCPUUtilization alone")),
        ])
    }

    @Test func anEmptyOrMissingDirectoryIsAnError() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let empty = try #require(throws: FunctionCatalogError.self) {
            try FunctionCatalog.load(directory: directory)
        }
        #expect(empty.problems.map(\.reason) == [.noDescriptors])

        let missing = try #require(throws: FunctionCatalogError.self) {
            try FunctionCatalog.load(directory: directory.appendingPathComponent("nowhere"))
        }
        guard case .unreadable = missing.problems.first?.reason else {
            Issue.record("expected unreadable, got \(missing)")
            return
        }
    }
}

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("threadweave-deployment-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

func descriptor(
    name: String, kind: String = "query", method: String = "GET", route: String = "/v1/threads/{threadId}",
    minReplicas: Int = 2, cpuRequest: String = "100m", cpuLimit: String = "500m", memoryRequest: String = "128Mi"
) -> [String: Any] {
    [
        "name": name, "kind": kind, "method": method, "route": route, "handler": "GetThreadHandler",
        "timeoutSeconds": 10,
        "scaling": ["minReplicas": minReplicas, "maxReplicas": 20, "targetCPUUtilization": 70],
        "resources": [
            "requests": ["cpu": cpuRequest, "memory": memoryRequest],
            "limits": ["cpu": cpuLimit, "memory": "256Mi"],
        ],
    ]
}

func write(_ descriptor: [String: Any], to url: URL) throws {
    try JSONSerialization.data(withJSONObject: descriptor, options: [.sortedKeys]).write(to: url)
}
