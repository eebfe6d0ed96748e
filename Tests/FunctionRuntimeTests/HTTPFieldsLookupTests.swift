@testable import FunctionRuntime
import HTTPTypes
import Testing

/// The single-field lookup answers what `HTTPFields`'s subscript answers,
/// repeated fields (joined) and cookies included.
@Suite struct HTTPFieldsLookupTests {
    static let fieldLists: [[(String, String)]] = [
        [],
        [("Content-Type", "application/json")],
        [("Accept-Language", "a"), ("content-type", "text/plain"), ("Accept", "*/*")],
        [("Accept", "a"), ("Content-Type", "x"), ("Accept", "b"), ("content-type", "y")],
        [("Cookie", "a=1"), ("Cookie", "b=2")],
        [("Authorization", "")],
    ]

    @Test(arguments: fieldLists.indices)
    func lookupAgreesWithTheSubscript(list: Int) throws {
        var fields = HTTPFields()
        for (name, value) in Self.fieldLists[list] {
            fields.append(HTTPField(name: try #require(HTTPField.Name(name)), value: value))
        }
        for name in [HTTPField.Name.contentType, .accept, .cookie, .authorization, .ifNoneMatch] {
            #expect(fields.value(of: name) == fields[name], "\(name) in \(Self.fieldLists[list])")
        }
    }

    @Test func repeatedFieldsAreJoined() {
        var fields = HTTPFields()
        fields.append(HTTPField(name: .accept, value: "a"))
        fields.append(HTTPField(name: .accept, value: "b"))
        #expect(fields.value(of: .accept) == "a, b")
        #expect(fields.value(of: .contentType) == nil)
    }
}
