/// The size limits of commands, in one place: `ThreadDecider` enforces them,
/// and the function adapters check the same values before any Redis call.
public enum InputLimits {
    public static let title = TextLimit(characters: 1...255, bytes: 1024)
    /// Blank remarks are recorded as absent, so any length from 0 is fine.
    public static let remarks = TextLimit(characters: 0...1024, bytes: 4 * 1024)
    public static let messageText = TextLimit(characters: 1...4000, bytes: 16 * 1024)
    /// Ids in one command's account list (create's lists and mentions may be empty).
    public static let accountIds = 1...1000
    /// Messages in one add-messages command, and ids in one remove-messages command.
    public static let messages = 1...100
}

/// Limits on one text field after trimming. Characters (grapheme clusters)
/// are what a person counts, but one Character can carry any number of
/// combining marks, so UTF-8 bytes are capped too: that is what storage pays.
public struct TextLimit: Sendable, Hashable {
    public let characters: ClosedRange<Int>
    public let bytes: Int

    public init(characters: ClosedRange<Int>, bytes: Int) {
        self.characters = characters
        self.bytes = bytes
    }

    /// How `trimmed` breaks the limit, as the end of a sentence naming the
    /// field ("must be …"), or nil when it fits. Bytes are checked first:
    /// counting Characters walks the whole text.
    public func violation(of trimmed: String) -> String? {
        let byteCount = trimmed.utf8.count
        if byteCount > bytes {
            return "must be at most \(bytes) bytes of UTF-8 after trimming, got \(byteCount)"
        }
        let count = trimmed.count
        guard characters.contains(count) else {
            return characters.lowerBound == 0
                ? "must be at most \(characters.upperBound) characters after trimming, got \(count)"
                : "must be \(characters.lowerBound)–\(characters.upperBound) characters after trimming, got \(count)"
        }
        return nil
    }
}

extension String {
    /// The text without leading and trailing white space, as titles, remarks
    /// and messages are recorded: Unicode's White_Space property plus U+200B
    /// (zero width space), the scalars Foundation's `.whitespacesAndNewlines`
    /// trims (tested over the whole BMP), in native Swift. Foundation's trimming bridges through NSString: some 85,000
    /// instructions for a 60-character message, on every add-messages.
    public var trimmingWhiteSpace: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.isWhiteSpace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.isWhiteSpace })!
        if first == scalars.startIndex, scalars.index(after: last) == scalars.endIndex { return self }
        return String(scalars[first...last])
    }
}

extension Unicode.Scalar {
    fileprivate var isWhiteSpace: Bool {
        isASCII ? value == 0x20 || (0x09...0x0D).contains(value) : properties.isWhitespace || value == 0x200B
    }
}
