import Foundation

/// Just enough of an OpenAPI 3.1 document to compare it with the code:
/// operations by `"METHOD /path"`, their parameters, body fields and error codes.
struct OpenAPI {
    struct Parameter {
        var name: String
        var location: String
        var required: Bool
    }

    struct Operation {
        var id: String
        var raw: [String: Any]
        var parameterList: [Parameter]

        func parameters(in location: String) -> [Parameter] { parameterList.filter { $0.location == location } }

        /// The JSON body's top-level fields, each with whether it is required; empty without a body.
        func bodyFields(_ document: OpenAPI) throws -> [String: Bool] {
            guard let body = raw["requestBody"] as? [String: Any] else { return [:] }
            let content = try document.resolve(body)["content"] as? [String: Any]
            guard let schema = (content?["application/json"] as? [String: Any])?["schema"] as? [String: Any] else {
                throw Malformed("\(id): the body is not application/json")
            }
            let resolved = Schema(try document.resolve(schema))
            return Dictionary(uniqueKeysWithValues: resolved.properties.map { ($0, resolved.required.contains($0)) })
        }

        /// The error codes each status of this operation may carry.
        func errorCodes(_ document: OpenAPI) throws -> [Int: Set<String>] {
            var result: [Int: Set<String>] = [:]
            for (status, response) in raw["responses"] as? [String: Any] ?? [:] {
                guard let code = Int(status), code >= 400, let response = response as? [String: Any] else { continue }
                result[code] = try document.errorCodes(ofResponse: response)
            }
            return result
        }
    }

    struct Schema {
        var raw: [String: Any]
        init(_ raw: [String: Any]) { self.raw = raw }
        var properties: [String] { Array((raw["properties"] as? [String: Any] ?? [:]).keys) }
        var required: [String] { raw["required"] as? [String] ?? [] }
        /// For the error shape: the enum of `error.code`.
        var errorCodes: Set<String>? {
            let error = (raw["properties"] as? [String: Any])?["error"] as? [String: Any]
            let code = (error?["properties"] as? [String: Any])?["code"] as? [String: Any]
            return (code?["enum"] as? [String]).map(Set.init)
        }
    }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    let root: [String: Any]
    let operations: [String: Operation]

    init(json: Data) throws {
        guard let root = try JSONSerialization.jsonObject(with: json) as? [String: Any] else { throw Malformed("not an object") }
        self.root = root
        var operations: [String: Operation] = [:]
        let methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
        for (path, item) in root["paths"] as? [String: Any] ?? [:] {
            for method in methods {
                guard let operation = (item as? [String: Any])?[method] as? [String: Any] else { continue }
                let parameters = try (operation["parameters"] as? [[String: Any]] ?? []).map { raw in
                    let parameter = try Self.resolve(raw, in: root)
                    return Parameter(
                        name: parameter["name"] as? String ?? "", location: parameter["in"] as? String ?? "",
                        required: parameter["required"] as? Bool ?? false)
                }
                operations["\(method.uppercased()) \(path)"] = Operation(
                    id: operation["operationId"] as? String ?? "", raw: operation, parameterList: parameters)
            }
        }
        self.operations = operations
    }

    func schema(named name: String) -> Schema? {
        ((root["components"] as? [String: Any])?["schemas"] as? [String: Any])?[name].flatMap { $0 as? [String: Any] }.map(Schema.init)
    }

    func componentResponseCodes(named name: String) throws -> Set<String>? {
        guard let response = ((root["components"] as? [String: Any])?["responses"] as? [String: Any])?[name] as? [String: Any] else {
            return nil
        }
        return try errorCodes(ofResponse: response)
    }

    func resolve(_ object: [String: Any]) throws -> [String: Any] { try Self.resolve(object, in: root) }

    private func errorCodes(ofResponse response: [String: Any]) throws -> Set<String> {
        let content = try resolve(response)["content"] as? [String: Any]
        guard let schema = (content?["application/json"] as? [String: Any])?["schema"] as? [String: Any],
            let codes = Schema(try resolve(schema)).errorCodes
        else { throw Malformed("an error response without the error shape") }
        return codes
    }

    /// Follows local `$ref`s (`#/components/...`).
    private static func resolve(_ object: [String: Any], in root: [String: Any]) throws -> [String: Any] {
        guard let reference = object["$ref"] as? String else { return object }
        guard reference.hasPrefix("#/") else { throw Malformed("only local references: \(reference)") }
        var node: Any = root
        for part in reference.dropFirst(2).split(separator: "/") {
            guard let next = (node as? [String: Any])?[String(part)] else { throw Malformed("unresolved \(reference)") }
            node = next
        }
        guard let resolved = node as? [String: Any] else { throw Malformed("\(reference) is not an object") }
        return try resolve(resolved, in: root)
    }
}
