import Deployment
import Foundation
import Testing
import ThreadFunctions

/// `functions/` is what gets deployed; `FunctionRegistry` is what the binary
/// can serve. A function missing on either side, or a route, method, kind or
/// handler that differs, fails here before it fails in a cluster.
@Suite struct DescriptorsMatchHandlersTests {
    @Test func everyDescriptorHasACompiledHandlerAndTheSameRoute() throws {
        let descriptors = Dictionary(
            uniqueKeysWithValues: try FunctionCatalog.load(directory: RepositoryPaths.functions).map { ($0.name, $0) })
        let entries = Dictionary(uniqueKeysWithValues: FunctionRegistry.entries.map { ($0.name, $0) })

        let missingDescriptors = Set(entries.keys).subtracting(descriptors.keys)
        let missingHandlers = Set(descriptors.keys).subtracting(entries.keys)
        #expect(missingDescriptors.isEmpty, "handlers without a descriptor in functions/: \(missingDescriptors.sorted())")
        #expect(missingHandlers.isEmpty, "descriptors without a compiled handler: \(missingHandlers.sorted())")

        for (name, entry) in entries {
            guard let descriptor = descriptors[name] else { continue }
            #expect(descriptor.route == entry.route, "\(name): descriptor route \(descriptor.route), handler route \(entry.route)")
            #expect(descriptor.method.rawValue == entry.method.rawValue, "\(name): method differs")
            #expect(descriptor.kind.rawValue == entry.kind.rawValue, "\(name): kind differs")
            #expect(descriptor.handler == entry.handlerTypeName, "\(name): handler \(descriptor.handler) vs \(entry.handlerTypeName)")
        }
        #expect(entries.count == 14)
    }
}
