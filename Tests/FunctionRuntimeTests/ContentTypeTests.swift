@testable import FunctionRuntime
import Testing

/// A POST runs a command only when it says it is JSON: the byte-level check
/// for the common header agrees with the general one.
@Suite struct ContentTypeTests {
    @Test(arguments: [
        "application/json", "Application/JSON", "APPLICATION/JSON", "application/json; charset=utf-8",
        "application/json;charset=UTF-8", " application/json ", "application/json ; charset=utf-8",
        "application/problem+json", "application/vnd.api+json; charset=utf-8",
    ])
    func jsonTypesAreJSON(_ contentType: String) {
        #expect(InvocationReader.isJSON(contentType))
    }

    @Test(arguments: [
        "", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/jsonx",
        "application/json-seq", "application/jso", "json", "application\u{0F}json", "text/json", "application/json+",
    ])
    func otherTypesAreNot(_ contentType: String) {
        #expect(!InvocationReader.isJSON(contentType))
    }
}
