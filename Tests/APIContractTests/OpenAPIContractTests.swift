import Foundation
import FunctionRuntime
import Testing
import ThreadDomain
import ThreadFunctions

/// `openapi.json` is written by hand, like the handlers; these tests hold the
/// two together. The operations are exactly the registry's routes (REST and
/// `POST /function/<name>`) plus the probes; every operation's parameters and
/// body fields are the keys its `Input` decodes, required where the input
/// requires them; every error code has its status. `make test-api` then checks
/// the answers against the document at run time.
@Suite struct OpenAPIContractTests {
    let document: OpenAPI

    init() throws {
        document = try OpenAPI(json: OpenAPIDocument.json)
    }

    /// Every registered handler with its `Input` type, checked against the registry by type name.
    static let handlers: [any RegistrableFunction.Type] = [
        CreateThreadHandler.self, DestroyThreadHandler.self, JoinAdministratorsHandler.self, LeaveAdministratorsHandler.self,
        JoinMembersHandler.self, LeaveMembersHandler.self, AddMessagesHandler.self, RemoveMessagesHandler.self,
        GetThreadHandler.self, ListThreadsHandler.self, ListAdministratorsHandler.self, ListMembersHandler.self,
        ListMessagesHandler.self, WatchThreadHandler.self,
    ]

    static let probes: Set<String> = ["GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.json"]

    /// Under JWT the token names the acting account, so the document describes
    /// `accountId` as optional everywhere; with THREADWEAVE_AUTH=none an input still requires it.
    static let optionalUnderAuthentication: Set<String> = ["accountId"]
    /// Query parameters that carry credentials, not input.
    static let credentialParameters: Set<String> = ["access_token"]

    @Test func handlerListMatchesTheRegistry() {
        #expect(Self.handlers.map { String(describing: $0) } == FunctionRegistry.entries.map(\.handlerTypeName))
    }

    @Test func operationsAreTheRegistryRoutesAndTheProbes() {
        var expected = Self.probes
        for entry in FunctionRegistry.entries {
            expected.insert("\(entry.method.rawValue) \(entry.route)")
            if entry.kind != .stream { expected.insert("POST /function/\(entry.name)") }
        }
        #expect(Set(document.operations.keys) == expected)
        for entry in FunctionRegistry.entries {
            #expect(document.operations["\(entry.method.rawValue) \(entry.route)"]?.id == entry.name)
            if entry.kind != .stream {
                #expect(document.operations["POST /function/\(entry.name)"]?.id == "invoke-\(entry.name)")
            }
        }
    }

    @Test(arguments: OpenAPIContractTests.handlers.map { String(describing: $0) })
    func restRouteTakesTheInputsKeys(handlerTypeName: String) throws {
        let handler = try #require(Self.handlers.first { String(describing: $0) == handlerTypeName })
        let entry = try #require(FunctionRegistry.entries.first { $0.handlerTypeName == handlerTypeName })
        let keys = try InputKeys.of(handler: handler)
        let operation = try #require(document.operations["\(entry.method.rawValue) \(entry.route)"])

        let pathParameters = operation.parameters(in: "path")
        #expect(pathParameters.map(\.name) == entry.pathParameters)
        #expect(pathParameters.allSatisfy { $0.required })
        var fields = try operation.bodyFields(document)
        for parameter in operation.parameters(in: "query") where !Self.credentialParameters.contains(parameter.name) {
            fields[parameter.name] = parameter.required
        }
        // On a REST route the path names the thread, so a body need not repeat it.
        let bodyMayOmit = Set(entry.pathParameters)
        let input = keys.removingRequired(Self.optionalUnderAuthentication.union(bodyMayOmit))
        let documentedFields = fields.merging(pathParameters.map { ($0.name, false) }) { body, _ in body }
        #expect(Set(documentedFields.keys) == input.all, "\(entry.name): the document's fields differ from the input's keys (\(input))")
        #expect(Set(documentedFields.filter { $0.value }.keys) == input.required, "\(entry.name): required fields differ (\(input))")
    }

    @Test(arguments: FunctionRegistry.entries.filter { $0.kind != .stream }.map(\.name))
    func invocationRouteTakesTheInputsKeysInTheBody(name: String) throws {
        let entry = try #require(FunctionRegistry.entry(named: name))
        let handler = try #require(Self.handlers.first { String(describing: $0) == entry.handlerTypeName })
        let input = try InputKeys.of(handler: handler).removingRequired(Self.optionalUnderAuthentication)
        let operation = try #require(document.operations["POST /function/\(name)"])
        #expect(operation.parameters(in: "query").isEmpty && operation.parameters(in: "path").isEmpty)
        let fields = try operation.bodyFields(document)
        #expect(Set(fields.keys) == input.all, "\(name): body fields differ from the input's keys (\(input))")
        #expect(Set(fields.filter { $0.value }.keys) == input.required, "\(name): required fields differ (\(input))")
    }

    @Test func newMessageSchemaIsTheMessageInputsKeys() throws {
        let keys = try InputKeys.of(NewMessageInput.self)
        let schema = try #require(document.schema(named: "NewMessage"))
        #expect(Set(schema.properties) == keys.all)
        #expect(Set(schema.required) == keys.required)
    }

    /// Each code's status in the document is the one `ErrorResponse` answers
    /// with, and every code the service can send is described.
    @Test func everyErrorCodeIsDescribedWithItsStatus() throws {
        var documentedStatus: [String: Set<Int>] = [:]
        for operation in document.operations.values {
            for (status, codes) in try operation.errorCodes(document) {
                for code in codes { documentedStatus[code, default: []].insert(status) }
            }
        }
        for code in ErrorCode.allCases where code != .methodNotAllowed {
            #expect(documentedStatus[code.rawValue] == [Int(ErrorResponse.status(for: code).code)], "\(code)")
        }
        // 405 answers a method no operation has; its response is described once, in components.
        let methodNotAllowed = try #require(try document.componentResponseCodes(named: "MethodNotAllowed"))
        #expect(methodNotAllowed == [ErrorCode.methodNotAllowed.rawValue])
        #expect(ErrorResponse.status(for: .methodNotAllowed).code == 405)

        let described = try #require(document.schema(named: "Error")?.errorCodes)
        let codes = Set(ErrorCode.allCases.map(\.rawValue))
        #expect(described == codes, "the document's error codes are exactly ErrorCode's")
    }

}

extension InputKeys {
    static func of(handler: any RegistrableFunction.Type) throws -> InputKeys {
        try inputKeys(handler)
    }

    private static func inputKeys<Handler: RegistrableFunction>(_ handler: Handler.Type) throws -> InputKeys {
        try InputKeys.of(Handler.Input.self)
    }

    /// These keys stay, but as optional.
    func removingRequired(_ keys: Set<String>) -> InputKeys {
        InputKeys(required: required.subtracting(keys), optional: optional.union(required.intersection(keys)))
    }
}
