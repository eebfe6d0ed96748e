import ArgumentParser
import Deployment
import Foundation

/// `threadweave manifests`: regenerates k8s/base/functions from functions/*.json,
/// or with `--check` fails when the committed manifests have drifted from them.
struct ManifestsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifests",
        abstract: "Generate the Kubernetes manifests of every function from its descriptor.",
        discussion: """
            Reads functions/*.json, validates them, and writes one Deployment, Service and \
            HorizontalPodAutoscaler per function plus a kustomization.yaml. With --check nothing \
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
        let functions = try FunctionCatalog.load(directory: URL(fileURLWithPath: functionsDirectory))
        let generator = ManifestGenerator()
        let outputDirectory = URL(fileURLWithPath: output)

        guard check else {
            let written = try generator.write(functions, to: outputDirectory)
            print("wrote \(written.count) files to \(output)")
            return
        }
        let drift = try generator.drift(functions, against: outputDirectory)
        guard drift.isEmpty else {
            var report = "\(output) is out of date with \(functionsDirectory) (run `threadweave manifests`):\n"
            for difference in drift {
                report += "  \(difference)\n"
            }
            FileHandle.standardError.write(Data(report.utf8))
            throw ExitCode.failure
        }
        print("\(output) is up to date (\(functions.count) functions)")
    }
}
