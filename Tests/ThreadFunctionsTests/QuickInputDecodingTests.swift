import Foundation
import Testing
import ThreadDomain
@testable import ThreadFunctions

/// The hand-written add-messages decoder never changes an answer: whatever it
/// decodes, the Codable decoder decodes to the same input, and whatever it
/// declines goes to the Codable one. Checked over bodies built from every
/// combination of the shapes below, valid and broken.
@Suite struct QuickInputDecodingTests {
    static let thread = "01J0000000000000000000THRD"
    static let account = "01J00000000000000000000ACC"
    static let message = "01J0000000000000000000MSG1"

    static let texts = [
        #""hi""#, #""  spaced out  ""#, #""line\nbreak\ttab""#, #""quote \" and backslash \\ and slash \/""#,
        #""caf\u00e9 \u00E9""#, #""emoji \ud83d\ude00""#, "\"café 😀 direct\"", #""nul \u0000 inside""#,
        #""lone \ud83d surrogate""#, #""low \ude00 alone""#, #""bad \x escape""#, "\"raw \u{01} control\"",
        "\"raw\nnewline\"", #""unterminated"#, "42", "null", #"["list"]"#, #""""#,
    ]
    static let ids = [nil, "null", "\"\(message)\"", "\"\(message.lowercased())\"", "\"not-an-id\"", "7"]
    static let mentions = [nil, "null", "[]", "[\"\(account)\"]", "[\"\(account)\",\"bad\"]", "\"\(account)\"", "[null]"]

    /// Messages from the combinations, each with its fields in two orders.
    static var messages: [String] {
        var result: [String] = []
        for text in texts {
            for id in ids {
                for mention in mentions {
                    var fields = ["\"text\":\(text)"]
                    if let id { fields.append("\"id\":\(id)") }
                    if let mention { fields.append("\"mentions\":\(mention)") }
                    result.append("{" + fields.joined(separator: ",") + "}")
                    result.append("{ " + fields.reversed().joined(separator: " , ") + " }")
                }
            }
        }
        return result + [
            "{\"text\":\"a\",\"replyTo\":\"\(message)\"}", "{\"text\":\"a\",\"replyTo\":null}", "{\"text\":\"a\",\"text\":\"b\"}",
            "{\"text\":\"a\",\"unknown\":1}", "{\"id\":\"\(message)\"}", "{}", "[]", "null", "{\"text\":\"a\",}",
        ]
    }

    static var bodies: [(body: String, parameters: [String: String])] {
        let routed = ["threadId": thread]
        let authenticated = ["threadId": thread, "accountId": account]
        var result: [(String, [String: String])] = []
        for message in messages {
            result.append(("{\"accountId\":\"\(account)\",\"messages\":[\(message)]}", routed))
        }
        let one = #"{"text":"hi"}"#
        let shapes = [
            "{\"accountId\":\"\(account)\",\"messages\":[\(one),\(one)]}",
            "{\"messages\":[\(one)],\"accountId\":\"\(account.lowercased())\"}",
            " \n{ \"accountId\" : \"\(account)\" , \"messages\" : [ \(one) ] } \n",
            "{\"accountId\":\"\(account)\",\"messages\":[]}",
            "{\"accountId\":\"\(account)\",\"messages\":[\(one)],\"commandId\":\"k-1\"}",
            "{\"accountId\":\"\(account)\",\"messages\":[\(one)],\"commandId\":null}",
            "{\"accountId\":\"\(account)\",\"messages\":[\(one)],\"commandId\":5}",
            "{\"accountId\":\"\(account)\",\"messages\":[\(one)],\"threadId\":\"\(thread)\"}",
            "{\"accountId\":\"\(account)\",\"messages\":[\(one)],\"threadId\":\"01J0000000000000000000OTHR\"}",
            "{\"accountId\":\"\(account)\",\"accountId\":\"\(account)\",\"messages\":[\(one)]}",
            "{\"accountId\":\"\(account)\",\"messages\":[\(one)]} trailing",
            "{\"accountId\":\"\(account)\",\"messages\":[\(one)]",
            "{\"accountId\":null,\"messages\":[\(one)]}",
            "{\"messages\":[\(one)]}",
            "{\"accountId\":\"\(account)\"}",
            "{\"accountId\":\"\(account)\",\"messages\":\(one)}",
            "[]", "", "nul", "{}",
        ]
        for shape in shapes {
            result.append((shape, routed))
            result.append((shape, authenticated))
            result.append((shape, [:]))
            result.append((shape.replacingOccurrences(of: "{\"accountId\"", with: "{\"threadId\":\"\(thread)\",\"accountId\""), [:]))
        }
        return result
    }

    @Test func whatTheQuickDecoderDecodesTheCodableDecoderDecodesTheSame() throws {
        var quickCount = 0
        for (body, parameters) in Self.bodies {
            let invocation = Invocation(body: Data(body.utf8), parameters: parameters)
            guard let quick = AddMessagesInput.quickDecode(body: invocation.body, parameters: invocation.parameters) else { continue }
            quickCount += 1
            let codable = try? InvocationCoding.decodeWithCodable(invocation) as AddMessagesInput
            #expect(quick == codable, "\(body) with \(parameters)")
        }
        #expect(quickCount > Self.bodies.count / 10, "the quick decoder takes the common shapes (\(quickCount) of \(Self.bodies.count))")
    }

    /// Truncated, stray, overlong, surrogate and past-U+10FFFF sequences, alone and amid ASCII and valid UTF-8.
    @Test(arguments: [[0xC3, 0x28], [0xFF], [0x80], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xF4, 0x90, 0x80, 0x80]] as [[UInt8]])
    func invalidUTF8IsLeftToTheCodableDecoder(invalid: [UInt8]) {
        for (before, after) in [("", ""), ("plain ", " text"), ("café ", "")] {
            var bytes = Array("{\"accountId\":\"\(Self.account)\",\"messages\":[{\"text\":\"\(before)".utf8)
            bytes += invalid
            bytes += Array("\(after)\"}]}".utf8)
            #expect(AddMessagesInput.quickDecode(body: Data(bytes), parameters: ["threadId": Self.thread]) == nil)
        }
    }

    @Test func theCommonBodyIsDecodedQuickly() throws {
        let body = "{\"accountId\":\"\(Self.account)\",\"messages\":[{\"text\":\"caf\\u00e9 \\ud83d\\ude00\",\"mentions\":[\"\(Self.account)\"]}]}"
        let input = try #require(AddMessagesInput.quickDecode(body: Data(body.utf8), parameters: ["threadId": Self.thread]))
        #expect(input.threadId.rawValue == Self.thread && input.accountId.rawValue == Self.account)
        #expect(input.messages.map(\.text) == ["café 😀"])
        #expect(input.messages[0].mentions?.map(\.rawValue) == [Self.account])
    }

    /// get-thread's parameters, valid and broken: the quick decoder answers
    /// only what the Codable one answers, and declines a body.
    @Test func queryParametersDecodeAsTheCodableDecoderDecodesThem() throws {
        let threads = [Self.thread, Self.thread.lowercased(), "not-a-thread", ""]
        let accounts: [String?] = [Self.account, Self.account.lowercased(), "01J0000000000000000000000I", nil]
        let versions: [String?] = [nil, "0", "42", "-3", "+7", "9223372036854775807", "9223372036854775808", "4.5", "x", ""]
        var quickCount = 0
        var cases = 0
        for thread in threads {
            for account in accounts {
                for version in versions {
                    var parameters = ["threadId": thread, "unrelated": "ignored"]
                    parameters["accountId"] = account
                    parameters["minVersion"] = version
                    for body in ["", #"{"accountId":"\#(Self.account)"}"#] {
                        cases += 1
                        let invocation = Invocation(body: Data(body.utf8), parameters: parameters)
                        let codable = try? InvocationCoding.decodeWithCodable(invocation) as ThreadQueryInput
                        guard let quick = ThreadQueryInput.quickDecode(body: invocation.body, parameters: parameters) else {
                            continue
                        }
                        quickCount += 1
                        #expect(body.isEmpty)
                        #expect(quick == codable, "\(parameters)")
                    }
                }
            }
        }
        #expect(quickCount >= 2 * 2 * 6, "the quick decoder takes the valid parameters (\(quickCount) of \(cases))")
    }
}
