import Foundation
import Testing
import ThreadDomain

@Suite struct TrimmingTests {
    /// The native trim removes exactly what Foundation's `.whitespacesAndNewlines`
    /// removes, for every scalar of the Basic Multilingual Plane and a few beyond,
    /// at either end, with a combining mark and an emoji inside.
    @Test func trimsTheScalarsFoundationTrims() {
        let scalars = (0...0xFFFF).compactMap(Unicode.Scalar.init) + [Unicode.Scalar(0x1F44D)!, Unicode.Scalar(0xE0020)!]
        var differing: [String] = []
        for scalar in scalars {
            let text = String(scalar) + " a\u{301} 👍🏽 " + String(scalar) + String(scalar)
            if text.trimmingWhiteSpace != text.trimmingCharacters(in: .whitespacesAndNewlines) {
                differing.append(String(format: "U+%04X", scalar.value))
            }
        }
        #expect(differing.isEmpty, "trimmed differently: \(differing)")
    }

    @Test func keepsTheTextBetweenAndAnswersEmptyForBlank() {
        #expect(" \t\n hello  world \u{3000}\u{2029}".trimmingWhiteSpace == "hello  world")
        #expect("\u{A0}\u{85}\r\n".trimmingWhiteSpace == "")
        #expect("".trimmingWhiteSpace == "")
        #expect("\u{301}x".trimmingWhiteSpace == "\u{301}x")
    }
}
