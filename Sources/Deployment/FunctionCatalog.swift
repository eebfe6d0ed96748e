public import Foundation

/// Reads and validates `functions/*.json`.
public enum FunctionCatalog {
    /// Every descriptor in `directory`, sorted by name.
    ///
    /// Throws ``FunctionCatalogError`` listing every problem found, not just the first,
    /// so one run tells the author all that needs fixing.
    public static func load(directory: URL) throws -> [FunctionDescriptor] {
        let fileNames: [String]
        do {
            fileNames = try FileManager.default.contentsOfDirectory(atPath: directory.path)
                .filter { $0.hasSuffix(".json") }
                .sorted()
        } catch {
            throw FunctionCatalogError(problems: [
                .init(file: directory.path, reason: .unreadable(error.localizedDescription))
            ])
        }
        guard !fileNames.isEmpty else {
            throw FunctionCatalogError(problems: [.init(file: directory.path, reason: .noDescriptors)])
        }

        var problems: [FunctionCatalogError.Problem] = []
        var descriptors: [(file: String, descriptor: FunctionDescriptor)] = []
        for fileName in fileNames {
            do {
                let data = try Data(contentsOf: directory.appendingPathComponent(fileName))
                let descriptor = try JSONDecoder().decode(FunctionDescriptor.self, from: data)
                problems += validate(descriptor, fileName: fileName).map { .init(file: fileName, reason: $0) }
                descriptors.append((fileName, descriptor))
            } catch let error as DecodingError {
                problems.append(.init(file: fileName, reason: .malformed(describe(error))))
            } catch {
                problems.append(.init(file: fileName, reason: .unreadable(error.localizedDescription)))
            }
        }
        problems += crossFileProblems(descriptors)

        guard problems.isEmpty else { throw FunctionCatalogError(problems: problems) }
        return descriptors.map(\.descriptor).sorted { $0.name < $1.name }
    }

    static func validate(_ descriptor: FunctionDescriptor, fileName: String) -> [FunctionCatalogError.Reason] {
        var reasons: [FunctionCatalogError.Reason] = []
        if !isDNSLabel(descriptor.name) {
            reasons.append(.invalidName(descriptor.name))
        }
        if fileName != descriptor.name + ".json" {
            reasons.append(.nameMismatch(name: descriptor.name))
        }
        if let routeProblem = routeProblem(descriptor.route) {
            reasons.append(.invalidRoute(descriptor.route, routeProblem))
        }
        // Commands change state and take a body; queries and streams are plain reads.
        let expectedMethod: FunctionDescriptor.HTTPMethod = descriptor.kind == .command ? .POST : .GET
        if descriptor.method != expectedMethod {
            reasons.append(.methodMismatch(kind: descriptor.kind, method: descriptor.method))
        }
        if !isSwiftTypeName(descriptor.handler) {
            reasons.append(.invalidHandler(descriptor.handler))
        }
        if let scalingProblem = scalingProblem(descriptor.scaling, kind: descriptor.kind) {
            reasons.append(.invalidScaling(scalingProblem))
        }
        if !(1...3600).contains(descriptor.timeoutSeconds) {
            reasons.append(.invalidTimeout(descriptor.timeoutSeconds))
        }
        if let resourcesProblem = resourcesProblem(descriptor.resources) {
            reasons.append(.invalidResources(resourcesProblem))
        }
        return reasons
    }

    private static func crossFileProblems(
        _ descriptors: [(file: String, descriptor: FunctionDescriptor)]
    ) -> [FunctionCatalogError.Problem] {
        var problems: [FunctionCatalogError.Problem] = []
        var fileByName: [String: String] = [:]
        var fileByEndpoint: [String: String] = [:]
        for (file, descriptor) in descriptors {
            if let earlier = fileByName[descriptor.name] {
                problems.append(.init(file: file, reason: .duplicateName(descriptor.name, alsoIn: earlier)))
            } else {
                fileByName[descriptor.name] = file
            }
            let endpoint = "\(descriptor.method.rawValue) \(descriptor.route)"
            if let earlier = fileByEndpoint[endpoint] {
                problems.append(.init(file: file, reason: .duplicateRoute(endpoint, alsoIn: earlier)))
            } else {
                fileByEndpoint[endpoint] = file
            }
        }
        return problems
    }

    /// Function names become Kubernetes object names (Service names must be DNS-1035 labels).
    private static func isDNSLabel(_ name: String) -> Bool {
        guard let first = name.first, let last = name.last, name.count <= 63 else { return false }
        return first.isASCII && first.isLowercase
            && (last.isASCII && (last.isLowercase || last.isNumber))
            && name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
    }

    private static func isSwiftTypeName(_ name: String) -> Bool {
        guard let first = name.first, first.isASCII, first.isUppercase else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
    }

    private static func routeProblem(_ route: String) -> String? {
        guard route == "/v1" || route.hasPrefix("/v1/") else { return "must start with /v1" }
        if route.count > 1, route.hasSuffix("/") { return "must not end with /" }
        if route.contains("?") { return "is a path template; query parameters do not belong in it" }
        for segment in route.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            if segment.isEmpty { return "has an empty segment" }
            let isParameter = segment.hasPrefix("{") && segment.hasSuffix("}") && segment.count > 2
            let literal = isParameter ? segment.dropFirst().dropLast() : segment
            let allowed = literal.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            if !allowed { return "segment \"\(segment)\" is neither a literal nor a {parameter}" }
        }
        return nil
    }

    private static func scalingProblem(_ scaling: FunctionDescriptor.Scaling, kind: FunctionDescriptor.Kind) -> String? {
        if scaling.minReplicas < 1 { return "minReplicas must be at least 1" }
        if scaling.minReplicas > scaling.maxReplicas {
            return "need minReplicas ≤ maxReplicas, got \(scaling.minReplicas) > \(scaling.maxReplicas)"
        }
        // Streams hold connections, not CPU: they scale on open streams, everything else on CPU.
        switch (kind, scaling.targetCPUUtilization, scaling.targetOpenStreamsPerPod) {
        case (.stream, nil, let streams?):
            if streams < 1 { return "targetOpenStreamsPerPod must be at least 1, got \(streams)" }
        case (.stream, _, _):
            return "a stream scales on targetOpenStreamsPerPod alone"
        case (_, let cpu?, nil):
            if !(1...100).contains(cpu) { return "targetCPUUtilization must be 1–100 (percent), got \(cpu)" }
        default:
            return "a \(kind.rawValue) scales on targetCPUUtilization alone"
        }
        return nil
    }

    private static func resourcesProblem(_ resources: FunctionDescriptor.Resources) -> String? {
        let quantities = [("requests", resources.requests), ("limits", resources.limits)]
        var parsed: [String: (millicores: Double, bytes: Double)] = [:]
        for (label, quantity) in quantities {
            guard let millicores = ResourceQuantity.millicores(quantity.cpu) else {
                return "\(label).cpu \"\(quantity.cpu)\" is not a CPU quantity (e.g. 250m or 1)"
            }
            guard let bytes = ResourceQuantity.bytes(quantity.memory) else {
                return "\(label).memory \"\(quantity.memory)\" is not a memory quantity (e.g. 256Mi)"
            }
            parsed[label] = (millicores, bytes)
        }
        if let requests = parsed["requests"], let limits = parsed["limits"] {
            if requests.millicores > limits.millicores { return "requests.cpu exceeds limits.cpu" }
            if requests.bytes > limits.bytes { return "requests.memory exceeds limits.memory" }
        }
        return nil
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }
            return keys.isEmpty ? "" : keys.joined(separator: ".") + ": "
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(path(context))missing field \"\(key.stringValue)\""
        case .typeMismatch(let type, let context):
            return "\(path(context))expected \(type)"
        case .valueNotFound(let type, let context):
            return "\(path(context))expected \(type), found null"
        case .dataCorrupted(let context):
            return "\(path(context))\(context.debugDescription)"
        @unknown default:
            return String(describing: error)
        }
    }
}

/// The subset of Kubernetes quantity syntax the descriptors use.
enum ResourceQuantity {
    static func millicores(_ text: String) -> Double? {
        if text.hasSuffix("m") {
            return Int(text.dropLast()).map(Double.init)
        }
        guard let cores = Double(text), cores >= 0, text.allSatisfy({ $0.isNumber || $0 == "." }) else { return nil }
        return cores * 1000
    }

    static func bytes(_ text: String) -> Double? {
        let suffixes: [(String, Double)] = [
            ("Ki", 0x1p10), ("Mi", 0x1p20), ("Gi", 0x1p30), ("Ti", 0x1p40),
            ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("", 1),
        ]
        for (suffix, factor) in suffixes where text.hasSuffix(suffix) {
            guard let amount = Int(text.dropLast(suffix.count)), amount >= 0 else { continue }
            return Double(amount) * factor
        }
        return nil
    }
}

public struct FunctionCatalogError: Error, CustomStringConvertible, Sendable, Hashable {
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        /// The descriptor's file name, or the directory for problems with the directory itself.
        public var file: String
        public var reason: Reason

        public var description: String { "\(file): \(reason)" }
    }

    public enum Reason: Sendable, Hashable, CustomStringConvertible {
        case unreadable(String)
        case noDescriptors
        case malformed(String)
        case invalidName(String)
        case nameMismatch(name: String)
        case duplicateName(String, alsoIn: String)
        case invalidRoute(String, String)
        case duplicateRoute(String, alsoIn: String)
        case methodMismatch(kind: FunctionDescriptor.Kind, method: FunctionDescriptor.HTTPMethod)
        case invalidHandler(String)
        case invalidScaling(String)
        case invalidTimeout(Int)
        case invalidResources(String)

        public var description: String {
            switch self {
            case .unreadable(let why): "cannot be read: \(why)"
            case .noDescriptors: "holds no *.json function descriptors"
            case .malformed(let why): "is not a valid descriptor: \(why)"
            case .invalidName(let name):
                "name \"\(name)\" must be a DNS label (lowercase letters, digits and '-', starting with a letter, at most 63 characters)"
            case .nameMismatch(let name): "name \"\(name)\" does not match the file name (expected \(name).json)"
            case .duplicateName(let name, let other): "name \"\(name)\" is also used by \(other)"
            case .invalidRoute(let route, let why): "route \"\(route)\" \(why)"
            case .duplicateRoute(let endpoint, let other): "\(endpoint) is also served by \(other)"
            case .methodMismatch(let kind, let method):
                "a \(kind.rawValue) function must use \(kind == .command ? "POST" : "GET"), not \(method.rawValue)"
            case .invalidHandler(let handler): "handler \"\(handler)\" is not a Swift type name"
            case .invalidScaling(let why): "scaling: \(why)"
            case .invalidTimeout(let seconds): "timeoutSeconds must be 1–3600, got \(seconds)"
            case .invalidResources(let why): "resources: \(why)"
            }
        }
    }

    public var problems: [Problem]

    public var description: String {
        "invalid function descriptors:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}
