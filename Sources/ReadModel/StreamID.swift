/// A stream entry id `<ms>-<seq>`, ordered as Redis orders them.
struct StreamID: Comparable, CustomStringConvertible {
    var milliseconds: UInt64
    var sequence: UInt64

    init?(_ text: String) {
        let parts = text.split(separator: "-")
        guard parts.count == 2, let milliseconds = UInt64(parts[0]), let sequence = UInt64(parts[1]) else { return nil }
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// The smallest id greater than this one.
    var successor: StreamID {
        var next = self
        if sequence == .max {
            next.milliseconds += 1
            next.sequence = 0
        } else {
            next.sequence += 1
        }
        return next
    }

    var description: String { "\(milliseconds)-\(sequence)" }

    static func < (lhs: StreamID, rhs: StreamID) -> Bool {
        (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence)
    }
}
