/// A YAML document tree with ordered keys, rendered in block style.
///
/// Hand-written on purpose: the manifests use a tiny, fixed subset of YAML, and
/// owning the emitter keeps the output byte-for-byte stable across library versions.
indirect enum YAML: Hashable, Sendable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case mapping([Entry])
    case sequence([YAML])

    struct Entry: Hashable, Sendable {
        var key: String
        var value: YAML
    }

    func rendered() -> String {
        var lines: [String] = []
        switch self {
        case .mapping(let entries) where !entries.isEmpty:
            YAML.appendMapping(entries, indent: 0, to: &lines)
        case .sequence(let items) where !items.isEmpty:
            YAML.appendSequence(items, indent: 0, to: &lines)
        default:
            lines.append(inlineScalar)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Scalars and empty collections, which fit on their key's line.
    private var inlineScalar: String {
        switch self {
        case .string(let text): YAML.quotedIfNeeded(text)
        case .int(let number): String(number)
        case .bool(let flag): flag ? "true" : "false"
        case .mapping: "{}"
        case .sequence: "[]"
        }
    }

    private var isNonEmptyCollection: Bool {
        switch self {
        case .mapping(let entries): !entries.isEmpty
        case .sequence(let items): !items.isEmpty
        default: false
        }
    }

    private static func appendMapping(_ entries: [Entry], indent: Int, to lines: inout [String]) {
        let padding = String(repeating: " ", count: indent)
        for entry in entries {
            let key = quotedIfNeeded(entry.key)
            switch entry.value {
            case .mapping(let nested) where !nested.isEmpty:
                lines.append("\(padding)\(key):")
                appendMapping(nested, indent: indent + 2, to: &lines)
            case .sequence(let items) where !items.isEmpty:
                lines.append("\(padding)\(key):")
                appendSequence(items, indent: indent + 2, to: &lines)
            default:
                lines.append("\(padding)\(key): \(entry.value.inlineScalar)")
            }
        }
    }

    private static func appendSequence(_ items: [YAML], indent: Int, to lines: inout [String]) {
        let padding = String(repeating: " ", count: indent)
        for item in items {
            guard item.isNonEmptyCollection else {
                lines.append("\(padding)- \(item.inlineScalar)")
                continue
            }
            // Render the item as if it sat two columns deeper, then hang its first line on the dash.
            var itemLines: [String] = []
            switch item {
            case .mapping(let entries): appendMapping(entries, indent: indent + 2, to: &itemLines)
            case .sequence(let nested): appendSequence(nested, indent: indent + 2, to: &itemLines)
            default: break
            }
            itemLines[0] = padding + "- " + itemLines[0].dropFirst(indent + 2)
            lines += itemLines
        }
    }

    /// Plain scalars only where no YAML 1.1 or 1.2 reader could take them for anything but a string.
    static func quotedIfNeeded(_ text: String) -> String {
        let ambiguousWords: Set<String> = [
            "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~",
        ]
        let startsSafely = text.first.map { $0.isLetter || $0 == "/" || $0 == "_" } ?? false
        let isPlainSafe = startsSafely
            && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_./-".contains($0)) }
            && !ambiguousWords.contains(text.lowercased())
        if isPlainSafe { return text }
        var escaped = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\t": escaped += "\\t"
            default:
                if scalar.value < 0x20 {
                    escaped += "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
                } else {
                    escaped.unicodeScalars.append(scalar)
                }
            }
        }
        return escaped + "\""
    }
}

extension YAML: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int) { self = .int(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(arrayLiteral elements: YAML...) { self = .sequence(elements) }
    /// Dictionary-literal syntax keeps its written order here, which is what makes the output deterministic.
    init(dictionaryLiteral elements: (String, YAML)...) {
        self = .mapping(elements.map { Entry(key: $0.0, value: $0.1) })
    }
}
