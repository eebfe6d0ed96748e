import ArgumentParser
import Deployment
import Foundation
import ThreadFunctions

/// `threadweave manifests`: writes the registry's identity of every function
/// (name, kind, method, route, handler) into functions/*.json and regenerates
/// k8s/base/functions from them, or with `--check` fails when either has drifted.
struct ManifestsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifests",
        abstract: "Generate the Kubernetes manifests of every function from its descriptor.",
        discussion: """
            Reads functions/*.json, validates them, and writes one Deployment, Service, \
            HorizontalPodAutoscaler and HTTPRoute per function plus a kustomization.yaml. With --check nothing \
            is written; the command exits non-zero and names each file that differs.
            """
    )

    @Option(name: .customLong("functions-dir"), help: "Directory of function descriptors.")
    var functionsDirectory = "functions"

    @Option(help: "Directory the manifests are written to.")
    var output = "k8s/base/functions"

    @Flag(help: "Compare the manifests in --output with freshly generated ones instead of writing them.")
    var check = false

    func run() throws {
        let directory = URL(fileURLWithPath: functionsDirectory)
        let synced = try DescriptorSync.apply(Self.registryIdentities, to: try FunctionCatalog.load(directory: directory))
        let functions = synced.descriptors
        let generator = ManifestGenerator()
        let outputDirectory = URL(fileURLWithPath: output)

        guard check else {
            for descriptor in functions where synced.changed.contains("\(descriptor.name).json") {
                try DescriptorSync.fileContents(of: descriptor).write(to: directory.appendingPathComponent("\(descriptor.name).json"))
                print("updated \(functionsDirectory)/\(descriptor.name).json from the registry")
            }
            let written = try generator.write(functions, to: outputDirectory)
            print("wrote \(written.count) files to \(output)")
            return
        }
        var report = ""
        for file in synced.changed {
            report += "  \(functionsDirectory)/\(file) differs from the registry\n"
        }
        for difference in try generator.drift(functions, against: outputDirectory) {
            report += "  \(difference)\n"
        }
        guard report.isEmpty else {
            FileHandle.standardError.write(Data("out of date (run `threadweave manifests`):\n\(report)".utf8))
            throw ExitCode.failure
        }
        print("\(functionsDirectory) and \(output) are up to date (\(functions.count) functions)")
    }

    /// The compiled registry's functions, as the descriptors name them.
    static var registryIdentities: [FunctionIdentity] {
        FunctionRegistry.entries.map { entry in
            FunctionIdentity(
                name: entry.name, kind: FunctionDescriptor.Kind(rawValue: entry.kind.rawValue)!,
                method: FunctionDescriptor.HTTPMethod(rawValue: entry.method.rawValue)!, route: entry.route,
                handler: entry.handlerTypeName)
        }
    }
}
