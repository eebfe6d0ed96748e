import Deployment
import Foundation
import Testing

/// `threadweave manifests` writes each descriptor's identity from the registry:
/// the committed files are byte for byte what it writes, and a descriptor that
/// says otherwise is corrected, not trusted.
@Suite struct DescriptorSyncTests {
    @Test func theCommittedDescriptorsAreWhatTheGeneratorWrites() throws {
        let directory = RepositoryPaths.functions
        for descriptor in try FunctionCatalog.load(directory: directory) {
            let committed = try Data(contentsOf: directory.appendingPathComponent("\(descriptor.name).json"))
            #expect(DescriptorSync.fileContents(of: descriptor) == committed, "\(descriptor.name).json")
        }
    }

    @Test func theRegistrysIdentityReplacesADescriptorsAndIsReported() throws {
        var descriptors = try FunctionCatalog.load(directory: RepositoryPaths.functions)
        let identities = descriptors.map {
            FunctionIdentity(name: $0.name, kind: $0.kind, method: $0.method, route: $0.route, handler: $0.handler)
        }
        descriptors[0].route = "/v1/somewhere/else"
        let outcome = try DescriptorSync.apply(identities, to: descriptors)
        #expect(outcome.changed == ["\(descriptors[0].name).json"])
        #expect(outcome.descriptors[0].route == identities[0].route)
        #expect(outcome.descriptors[0].scaling == descriptors[0].scaling, "deployment settings stay the file's")
    }

    @Test func aFunctionOnOneSideOnlyIsRefused() throws {
        let descriptors = try FunctionCatalog.load(directory: RepositoryPaths.functions)
        var identities = descriptors.map {
            FunctionIdentity(name: $0.name, kind: $0.kind, method: $0.method, route: $0.route, handler: $0.handler)
        }
        let dropped = identities.removeFirst()
        identities.append(FunctionIdentity(name: "new-function", kind: .query, method: .GET, route: "/v1/new", handler: "NewHandler"))
        do {
            _ = try DescriptorSync.apply(identities, to: descriptors)
            Issue.record("a mismatch was accepted")
        } catch {
            #expect(error.missingDescriptors == ["new-function"])
            #expect(error.missingFunctions == [dropped.name])
        }
    }
}
