import ArgumentParser
import FunctionRuntime
import ThreadFunctions

/// `threadweave function <name>`: one function, Knative/OpenFaaS-style, on
/// `POST /` (`GET /` for watch-thread, a stream) and its REST route, plus
/// health, readiness and metrics.
struct FunctionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "function",
        abstract: "Serve one function on POST / (GET / for watch-thread) and its REST route (one Deployment per function on Kubernetes).",
        discussion: "Functions: \(FunctionRegistry.names.joined(separator: ", "))."
    )

    @OptionGroup var options: GlobalOptions
    @OptionGroup var http: HTTPOptions
    @OptionGroup var authentication: AuthenticationOptions

    @Argument(help: "The function to serve.")
    var name: String

    func validate() throws {
        guard FunctionRegistry.entry(named: name) != nil else {
            throw ValidationError(
                "unknown function '\(name)'; valid names: \(FunctionRegistry.names.joined(separator: ", "))")
        }
    }

    func run() async throws {
        let logger = options.makeLogger(label: "threadweave.function.\(name)")
        let runtime = RuntimeConfiguration(
            http: try http.configuration(defaultHost: "0.0.0.0"), mode: .single(name: name),
            serverName: "threadweave-\(name)")
        let process = FunctionProcess(
            options: options, runtime: runtime,
            authentication: try await authentication.authentication(defaultMode: .jwt, logger: logger),
            redis: try options.redisConfiguration(), runsSetup: false, logger: logger)
        try await process.run()
    }
}
