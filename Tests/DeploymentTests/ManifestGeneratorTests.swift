import Foundation
import Testing
@testable import Deployment

@Suite struct ManifestGeneratorTests {
    let functions: [FunctionDescriptor]
    let files: [String: String]

    init() throws {
        functions = try FunctionCatalog.load(directory: RepositoryPaths.functions)
        files = Dictionary(uniqueKeysWithValues: ManifestGenerator().files(for: functions).map { ($0.name, $0.contents) })
    }

    @Test func everyFunctionGetsADeploymentServiceAutoscalerAndRoute() throws {
        #expect(Set(files.keys) == Set(functions.map { "\($0.name).yaml" } + ["kustomization.yaml"]))
        for function in functions {
            let documents = try #require(files["\(function.name).yaml"]).components(separatedBy: "---\n")
            try #require(documents.count == 4)
            let (deployment, service, autoscaler) = (documents[0], documents[1], documents[2])
            let name = function.name

            #expect(deployment.contains("\nkind: Deployment\nmetadata:\n  name: \(name)\n"))
            #expect(deployment.contains("app.kubernetes.io/name: threadweave\n"))
            #expect(deployment.contains("app.kubernetes.io/component: \(name)\n"))
            #expect(deployment.contains(block(8, """
                - name: function
                  image: threadweave
                  imagePullPolicy: IfNotPresent
                  args:
                    - function
                    - \(name)
                """)))
            #expect(deployment.contains(block(10, """
                livenessProbe:
                  httpGet:
                    path: /healthz
                    port: http
                """)))
            #expect(deployment.contains(block(10, """
                readinessProbe:
                  httpGet:
                    path: /readyz
                    port: http
                """)))
            let resources = function.resources
            #expect(deployment.contains(block(10, """
                resources:
                  requests:
                    cpu: "\(resources.requests.cpu)"
                    memory: "\(resources.requests.memory)"
                  limits:
                    cpu: "\(resources.limits.cpu)"
                    memory: "\(resources.limits.memory)"
                """)))
            #expect(deployment.contains(block(12, """
                - name: PORT
                  value: "8080"
                """)))
            #expect(deployment.contains(block(12, """
                - name: REDIS_URL
                  valueFrom:
                    configMapKeyRef:
                      name: threadweave-config
                      key: REDIS_URL
                """)))
            #expect(deployment.contains(block(12, "- name: LOG_FORMAT\n  value: json")))
            let grace = try #require(integer(after: "terminationGracePeriodSeconds: ", in: deployment))
            #expect(grace >= function.timeoutSeconds + 5)
            for hardening in [
                "runAsNonRoot: true", "runAsUser: 10001", "readOnlyRootFilesystem: true",
                "allowPrivilegeEscalation: false", "type: RuntimeDefault", block(14, "drop:\n  - ALL"),
            ] {
                #expect(deployment.contains(hardening), "\(name): \(hardening)")
            }
            // The NetworkPolicies select these, so only functions take traffic and only ThreadWeave reaches Redis.
            #expect(deployment.contains(block(6, """
                labels:
                  app.kubernetes.io/name: threadweave
                  app.kubernetes.io/component: \(name)
                  threadweave.io/role: function
                  threadweave.io/redis-client: "true"
                """)))
            #expect(deployment.contains(#"prometheus.io/scrape: "true""#))

            #expect(service.contains("\nkind: Service\nmetadata:\n  name: \(name)\n"))
            #expect(service.contains(block(2, """
                ports:
                  - name: http
                    port: 80
                    targetPort: http
                """)))
            #expect(service.contains("  selector:\n    app.kubernetes.io/name: threadweave\n    app.kubernetes.io/component: \(name)\n"))

            #expect(autoscaler.contains("\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: \(name)\n"))
            #expect(autoscaler.contains("    kind: Deployment\n    name: \(name)\n"))
            #expect(autoscaler.contains("  minReplicas: \(function.scaling.minReplicas)\n  maxReplicas: \(function.scaling.maxReplicas)\n"))
        }
    }

    /// An autoscaler owns every function's replica count; a count in the Deployment would reset it on each apply.
    @Test func deploymentsLeaveTheReplicaCountToTheAutoscaler() throws {
        for function in functions {
            let deployment = try #require(files["\(function.name).yaml"]?.components(separatedBy: "---\n").first)
            #expect(!deployment.contains("replicas:"), "\(function.name)")
        }
    }

    /// Commands and queries scale on CPU; watch-thread, whose streams sit idle, on its open-streams gauge.
    @Test func streamsScaleOnOpenStreamsOthersOnCPU() throws {
        for function in functions {
            let autoscaler = try #require(files["\(function.name).yaml"]?.components(separatedBy: "---\n")[2])
            if let streams = function.scaling.targetOpenStreamsPerPod {
                #expect(function.kind == .stream)
                #expect(autoscaler.contains(block(4, """
                    - type: Pods
                      pods:
                        metric:
                          name: threadweave_watch_streams_open
                        target:
                          type: AverageValue
                          averageValue: "\(streams)"
                    """)))
                #expect(!autoscaler.contains("cpu"))
            } else {
                let cpu = try #require(function.scaling.targetCPUUtilization)
                #expect(autoscaler.contains("        name: cpu\n"))
                #expect(autoscaler.contains("averageUtilization: \(cpu)\n"))
            }
        }
        #expect(functions.contains { $0.kind == .stream && $0.scaling.targetOpenStreamsPerPod != nil })
    }

    /// Secrets reach the process as read-only files named by `*_FILE`, never as values in the environment.
    @Test func functionsReadTheRedisPasswordAndJWTKeyFromMountedSecrets() throws {
        for function in functions {
            let deployment = try #require(files["\(function.name).yaml"]?.components(separatedBy: "---\n").first)
            #expect(deployment.contains(block(12, """
                - name: REDIS_PASSWORD_FILE
                  value: /var/run/secrets/threadweave/redis/password
                """)))
            #expect(deployment.contains(block(12, "- name: THREADWEAVE_AUTH\n  value: jwt")))
            #expect(deployment.contains(block(12, """
                - name: THREADWEAVE_JWT_SECRET_FILE
                  value: /var/run/secrets/threadweave/jwt/secret
                """)))
            for (volume, secret, key, directory) in [
                ("redis-credentials", "threadweave-redis", "password", "/var/run/secrets/threadweave/redis"),
                ("jwt-secret", "threadweave-jwt", "secret", "/var/run/secrets/threadweave/jwt"),
            ] {
                #expect(deployment.contains(block(8, """
                    - name: \(volume)
                      secret:
                        secretName: \(secret)
                        items:
                          - key: \(key)
                            path: \(key)
                        defaultMode: 288
                    """)), "\(function.name): \(volume)")
                #expect(deployment.contains(block(12, """
                    - name: \(volume)
                      mountPath: \(directory)
                      readOnly: true
                    """)), "\(function.name): \(volume)")
            }
            // Secret values never appear in env, and serving pods cannot load the Redis library.
            #expect(!deployment.contains("secretKeyRef"))
            #expect(!deployment.contains("initContainers"))
            #expect(deployment.contains("    fsGroup: 10001\n"))
        }
    }

    @Test func everyFunctionHasAnHTTPRouteToItsService() throws {
        for function in functions {
            let route = try #require(files["\(function.name).yaml"]?.components(separatedBy: "---\n").last)
            #expect(route.hasPrefix("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: \(function.name)\n"))
            #expect(route.contains(block(2, "parentRefs:\n  - name: threadweave")))
            #expect(route.contains("          method: \(function.method.rawValue)\n"))
            #expect(route.contains(block(6, "backendRefs:\n  - name: \(function.name)\n    port: 80")))
            #expect(route.contains("        request: \"\(function.timeoutSeconds)s\"\n"))
        }
        let create = try #require(files["create-thread.yaml"])
        #expect(create.contains(block(12, "type: Exact\nvalue: /v1/threads/create")))
        let add = try #require(files["add-messages.yaml"])
        #expect(add.contains(block(12, "type: RegularExpression\nvalue: \"^/v1/threads/[^/]+/messages/add$\"")))
    }

    /// One host serves every route, so no request may match two functions' rules: for each function, a
    /// concrete request (parameters filled in) matches its own rule and no other function's.
    @Test func routesAreUnambiguous() throws {
        let matchers = try functions.map { function in
            (name: function.name, method: function.method, matches: try pathMatcher(ManifestGenerator.pathMatch(function.route)))
        }
        for function in functions {
            let path = function.route.replacingOccurrences(
                of: #"\{[^}]+\}"#, with: "01JDZQ8V6K3M5N7P9R1S3T5V7X", options: .regularExpression)
            let matching = matchers.filter { $0.method == function.method && $0.matches(path) }.map(\.name)
            #expect(matching == [function.name], "\(function.method) \(path)")
            // A route is the whole path, not a prefix: a trailing segment reaches none of these rules.
            #expect(!matchers.contains { $0.name == function.name && $0.matches(path + "/extra") }, "\(path)/extra")
        }
    }

    @Test func kustomizationListsEveryFunctionFile() throws {
        let kustomization = try #require(files["kustomization.yaml"])
        let listed = kustomization.split(separator: "\n").filter { $0.hasPrefix("  - ") }.map { String($0.dropFirst(4)) }
        #expect(listed == functions.map { "\($0.name).yaml" })
    }

    @Test func outputIsDeterministic() {
        let generator = ManifestGenerator()
        let first = generator.files(for: functions)
        #expect(generator.files(for: functions.reversed()) == first)
        #expect(generator.files(for: functions.shuffled()) == first)
    }

    @Test func quotesScalarsThatAReaderCouldTakeForSomethingElse() {
        #expect(YAML.quotedIfNeeded("threadweave") == "threadweave")
        #expect(YAML.quotedIfNeeded("/healthz") == "/healthz")
        #expect(YAML.quotedIfNeeded("app.kubernetes.io/name") == "app.kubernetes.io/name")
        #expect(YAML.quotedIfNeeded("8080") == "\"8080\"")
        #expect(YAML.quotedIfNeeded("250m") == "\"250m\"")
        #expect(YAML.quotedIfNeeded("yes") == "\"yes\"")
        #expect(YAML.quotedIfNeeded("Off") == "\"Off\"")
        #expect(YAML.quotedIfNeeded("") == "\"\"")
        #expect(YAML.quotedIfNeeded("redis://redis:6379") == "\"redis://redis:6379\"")
        #expect(YAML.quotedIfNeeded("say \"hi\"\n") == "\"say \\\"hi\\\"\\n\"")
    }

    @Test func rendersNestedSequencesAndEmptyCollections() {
        let document: YAML = ["list": [["a": 1, "b": ["x", "y"]], [], [1, 2]], "empty": [:]]
        #expect(document.rendered() == """
            list:
              - a: 1
                b:
                  - x
                  - "y"
              - []
              - - 1
                - 2
            empty: {}

            """)
    }

    @Test func writeReplacesStaleGeneratedFilesAndKeepsHandMadeOnes() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let generator = ManifestGenerator()
        try generator.write(functions, to: directory)
        #expect(try generator.drift(functions, against: directory).isEmpty)

        let remaining = functions.filter { $0.name != "watch-thread" }
        let handMade = directory.appendingPathComponent("notes.yaml")
        try Data("kind: Note\n".utf8).write(to: handMade)
        #expect(try generator.drift(remaining, against: directory) == [
            .changed("kustomization.yaml"), .stale("notes.yaml"), .stale("watch-thread.yaml"),
        ])

        try generator.write(remaining, to: directory)
        #expect(try generator.drift(remaining, against: directory) == [.stale("notes.yaml")])
        #expect(FileManager.default.fileExists(atPath: handMade.path))

        try FileManager.default.removeItem(at: directory.appendingPathComponent("get-thread.yaml"))
        #expect(try generator.drift(remaining, against: directory) == [.missing("get-thread.yaml"), .stale("notes.yaml")])
    }

    /// The committed manifests must be exactly what the descriptors generate.
    /// `THREADWEAVE_WRITE_MANIFESTS=1` also regenerates them (the bootstrap path
    /// while the `threadweave manifests` CLI cannot be built on its own); the
    /// drift is measured before that write, so the run that rewrites still fails.
    @Test func committedManifestsMatchTheDescriptors() throws {
        let generator = ManifestGenerator()
        let drift = try generator.drift(functions, against: RepositoryPaths.generatedManifests)
        let rewrite = ProcessInfo.processInfo.environment["THREADWEAVE_WRITE_MANIFESTS"] == "1"
        if rewrite, !drift.isEmpty {
            try generator.write(functions, to: RepositoryPaths.generatedManifests)
        }
        #expect(
            drift.isEmpty,
            """
            k8s/base/functions differs from functions/*.json:
            \(drift.map { "  \($0)" }.joined(separator: "\n"))
            \(rewrite
                ? "Rewritten now: review and commit k8s/base/functions, then run the test again."
                : "Regenerate with `threadweave manifests` (make manifests), or\nTHREADWEAVE_WRITE_MANIFESTS=1 swift test --filter DeploymentTests.committedManifestsMatchTheDescriptors")
            """
        )
    }

    /// Production keeps a PodDisruptionBudget per function; a new descriptor needs one there too.
    @Test func productionOverlayHasADisruptionBudgetPerFunction() throws {
        let budgets = try String(
            contentsOf: RepositoryPaths.productionOverlay.appendingPathComponent("pod-disruption-budgets.yaml"),
            encoding: .utf8
        )
        for function in functions {
            #expect(
                budgets.contains("  name: \(function.name)\n")
                    && budgets.contains("app.kubernetes.io/component: \(function.name)\n"),
                "no PodDisruptionBudget for \(function.name)"
            )
        }
    }
}

/// `text` with every line indented by `indent` spaces and ended by a newline, to match a nested YAML block.
private func block(_ indent: Int, _ text: String) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false)
        .map { String(repeating: " ", count: indent) + $0 + "\n" }
        .joined()
}

/// What a Gateway does with an HTTPRoute path match, for the two kinds the generator writes.
private func pathMatcher(_ match: YAML) throws -> (String) -> Bool {
    guard case .mapping(let entries) = match,
          case .string(let type)? = entries.first(where: { $0.key == "type" })?.value,
          case .string(let value)? = entries.first(where: { $0.key == "value" })?.value
    else { throw MatchError() }
    switch type {
    case "Exact":
        return { $0 == value }
    case "RegularExpression":
        let expression = try NSRegularExpression(pattern: value)
        return { path in
            expression.firstMatch(in: path, range: NSRange(path.startIndex..., in: path)) != nil
        }
    default:
        throw MatchError()
    }
}

private struct MatchError: Error {}

private func integer(after prefix: String, in text: String) -> Int? {
    guard let range = text.range(of: prefix) else { return nil }
    return Int(text[range.upperBound...].prefix { $0.isNumber })
}
