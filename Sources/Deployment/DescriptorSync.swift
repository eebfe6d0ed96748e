public import Foundation

/// What the binary says about a function: its name, kind, method, route and
/// handler, from the registry it is compiled with. `functions/<name>.json`
/// repeats these beside the deployment settings (scaling, resources,
/// timeout) only so the manifests can be generated without the binary;
/// `threadweave manifests` writes them from the registry, and `--check`
/// fails where a file says otherwise. The registry is the one source.
public struct FunctionIdentity: Sendable, Hashable {
    public var name: String
    public var kind: FunctionDescriptor.Kind
    public var method: FunctionDescriptor.HTTPMethod
    public var route: String
    public var handler: String

    public init(name: String, kind: FunctionDescriptor.Kind, method: FunctionDescriptor.HTTPMethod, route: String, handler: String) {
        self.name = name
        self.kind = kind
        self.method = method
        self.route = route
        self.handler = handler
    }
}

public enum DescriptorSync {
    public struct Outcome: Sendable, Hashable {
        /// The descriptors with the registry's identities.
        public var descriptors: [FunctionDescriptor]
        /// Descriptor files whose identity fields the registry changed.
        public var changed: [String]
    }

    public struct Mismatch: Error, CustomStringConvertible {
        public var missingDescriptors: [String]
        public var missingFunctions: [String]
        public var description: String {
            var lines: [String] = []
            if !missingDescriptors.isEmpty {
                lines.append("functions without a descriptor (add functions/<name>.json with its scaling and resources): "
                    + missingDescriptors.joined(separator: ", "))
            }
            if !missingFunctions.isEmpty {
                lines.append("descriptors of functions the binary does not have: " + missingFunctions.joined(separator: ", "))
            }
            return lines.joined(separator: "\n")
        }
    }

    /// Sets each descriptor's identity fields from `identities`. Both sides
    /// must name the same functions: a descriptor's deployment settings
    /// cannot be invented, and a function the binary lacks cannot be deployed.
    public static func apply(_ identities: [FunctionIdentity], to descriptors: [FunctionDescriptor]) throws(Mismatch) -> Outcome {
        let byName = Dictionary(uniqueKeysWithValues: identities.map { ($0.name, $0) })
        let described = Set(descriptors.map(\.name))
        let mismatch = Mismatch(
            missingDescriptors: identities.map(\.name).filter { !described.contains($0) }.sorted(),
            missingFunctions: descriptors.map(\.name).filter { byName[$0] == nil }.sorted())
        guard mismatch.missingDescriptors.isEmpty, mismatch.missingFunctions.isEmpty else { throw mismatch }
        var outcome = Outcome(descriptors: [], changed: [])
        for var descriptor in descriptors {
            let identity = byName[descriptor.name]!
            let before = descriptor
            descriptor.kind = identity.kind
            descriptor.method = identity.method
            descriptor.route = identity.route
            descriptor.handler = identity.handler
            if descriptor != before { outcome.changed.append("\(descriptor.name).json") }
            outcome.descriptors.append(descriptor)
        }
        return outcome
    }

    /// A descriptor as its file holds it: two-space indents, fields in a
    /// fixed order, a final newline. The objects are laid out by hand because
    /// Foundation's encoder orders keys by hash on Linux, and a file should
    /// only change where its content does.
    public static func fileContents(of descriptor: FunctionDescriptor) -> Data {
        // Strings are quoted by Foundation's encoder: only objects needed the fixed order by hand.
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        func text(_ value: String) -> String {
            String(decoding: (try? encoder.encode(value)) ?? Data(#""""#.utf8), as: UTF8.self)
        }
        func quantities(_ quantities: FunctionDescriptor.ResourceQuantities, indent: String) -> String {
            "{\n\(indent)  \"cpu\": \(text(quantities.cpu)),\n\(indent)  \"memory\": \(text(quantities.memory))\n\(indent)}"
        }
        let scaling = descriptor.scaling
        let lines = [
            "{",
            "  \"name\": \(text(descriptor.name)),",
            "  \"kind\": \(text(descriptor.kind.rawValue)),",
            "  \"method\": \(text(descriptor.method.rawValue)),",
            "  \"route\": \(text(descriptor.route)),",
            "  \"handler\": \(text(descriptor.handler)),",
            "  \"timeoutSeconds\": \(descriptor.timeoutSeconds),",
            "  \"scaling\": {",
            "    \"minReplicas\": \(scaling.minReplicas),",
            "    \"maxReplicas\": \(scaling.maxReplicas),",
            scaling.targetOpenStreamsPerPod.map { "    \"targetOpenStreamsPerPod\": \($0)" }
                ?? "    \"targetCPUUtilization\": \(scaling.targetCPUUtilization ?? 0)",
            "  },",
            "  \"resources\": {",
            "    \"requests\": \(quantities(descriptor.resources.requests, indent: "    ")),",
            "    \"limits\": \(quantities(descriptor.resources.limits, indent: "    "))",
            "  }",
            "}",
        ]
        return Data((lines.joined(separator: "\n") + "\n").utf8)
    }
}
