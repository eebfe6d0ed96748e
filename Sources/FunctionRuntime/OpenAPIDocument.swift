public import Foundation
import NIOCore

/// The OpenAPI 3.1 document of every route, body, answer, header and error:
/// `openapi.json` beside this file, embedded in the binary, answered by
/// `GET /openapi.json` in every HTTP process. It is written by hand, like the
/// handlers; the API contract tests check it against `FunctionRegistry`, the
/// inputs' coding keys and `ErrorCode`, and `make test-api` fuzzes `serve`
/// from it, so the document and the code cannot drift apart unnoticed.
public enum OpenAPIDocument {
    public static var json: Data { Data(PackageResources.openapi_json) }

    static let body = ByteBuffer(bytes: PackageResources.openapi_json)
}
