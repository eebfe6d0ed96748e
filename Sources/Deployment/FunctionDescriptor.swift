/// One deployable function, as described by `functions/<name>.json`.
///
/// The descriptors are the source of the deployment settings (timeout,
/// scaling, resources): the function manifests under `k8s/base/functions/`
/// are generated from them. Name, kind, method, route and handler come from
/// the binary's registry (`DescriptorSync`).
public struct FunctionDescriptor: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable, Hashable, CaseIterable {
        /// Appends events to a thread stream.
        case command
        /// Reads the read model.
        case query
        /// Holds a long-lived response open (server-sent events).
        case stream

        public init(from decoder: any Decoder) throws {
            let rawValue = try decoder.singleValueContainer().decode(String.self)
            guard let kind = Kind(rawValue: rawValue) else {
                throw DecodingError.dataCorrupted(.init(
                    codingPath: decoder.codingPath,
                    debugDescription: "unknown kind \"\(rawValue)\"; expected one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))"
                ))
            }
            self = kind
        }
    }

    public enum HTTPMethod: String, Codable, Sendable, Hashable, CaseIterable {
        case GET, POST

        public init(from decoder: any Decoder) throws {
            let rawValue = try decoder.singleValueContainer().decode(String.self)
            guard let method = HTTPMethod(rawValue: rawValue) else {
                throw DecodingError.dataCorrupted(.init(
                    codingPath: decoder.codingPath,
                    debugDescription: "unsupported method \"\(rawValue)\"; expected one of \(HTTPMethod.allCases.map(\.rawValue).joined(separator: ", "))"
                ))
            }
            self = method
        }
    }

    /// What the function's HorizontalPodAutoscaler does. The Deployment itself carries no replica
    /// count: the autoscaler owns it, so re-applying the manifests never resets a scaled count.
    public struct Scaling: Codable, Sendable, Hashable {
        public var minReplicas: Int
        public var maxReplicas: Int
        /// Average CPU utilisation (percent of the request) the autoscaler aims for: commands and queries.
        public var targetCPUUtilization: Int?
        /// Open server-sent-event streams per pod the autoscaler aims for: streams, which hold
        /// connections open while using next to no CPU.
        public var targetOpenStreamsPerPod: Int?

        public init(minReplicas: Int, maxReplicas: Int, targetCPUUtilization: Int? = nil, targetOpenStreamsPerPod: Int? = nil) {
            self.minReplicas = minReplicas
            self.maxReplicas = maxReplicas
            self.targetCPUUtilization = targetCPUUtilization
            self.targetOpenStreamsPerPod = targetOpenStreamsPerPod
        }
    }

    /// Kubernetes resource quantities, kept as the strings Kubernetes reads ("250m", "256Mi").
    public struct ResourceQuantities: Codable, Sendable, Hashable {
        public var cpu: String
        public var memory: String

        public init(cpu: String, memory: String) {
            self.cpu = cpu
            self.memory = memory
        }
    }

    public struct Resources: Codable, Sendable, Hashable {
        public var requests: ResourceQuantities
        public var limits: ResourceQuantities

        public init(requests: ResourceQuantities, limits: ResourceQuantities) {
            self.requests = requests
            self.limits = limits
        }
    }

    /// DNS-1123 label; also the Deployment, Service and `threadweave function <name>` name.
    public var name: String
    public var kind: Kind
    public var method: HTTPMethod
    /// The REST path template of DESIGN §4, e.g. `/v1/threads/{threadId}/messages/add` (no query string).
    public var route: String
    /// The Swift type in ThreadFunctions that implements the function.
    public var handler: String
    /// The longest a single invocation may take; pods get this plus a margin to drain on shutdown.
    public var timeoutSeconds: Int
    public var scaling: Scaling
    public var resources: Resources

    public init(
        name: String, kind: Kind, method: HTTPMethod, route: String, handler: String,
        scaling: Scaling, resources: Resources, timeoutSeconds: Int
    ) {
        self.name = name
        self.kind = kind
        self.method = method
        self.route = route
        self.handler = handler
        self.scaling = scaling
        self.resources = resources
        self.timeoutSeconds = timeoutSeconds
    }
}
