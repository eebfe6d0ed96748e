import Foundation
import Logging
import Synchronization

extension LoggingSystem {
    private static let bootstrapped = Mutex(false)

    /// Bootstraps logging the first time it is asked; later calls keep the first choice.
    static func bootstrapOnce(json: Bool) {
        let first = bootstrapped.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        if json {
            bootstrap { label in JSONLogHandler(label: label) }
        } else {
            bootstrap { label in StreamLogHandler.standardError(label: label) }
        }
    }
}

/// One JSON object per line on standard error, for log collectors
/// (`LOG_FORMAT=json`): `ts level label msg` plus the metadata as strings.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            fields[key] = "\(value)"
        }
        fields["ts"] = Date().formatted(.iso8601)
        fields["level"] = event.level.rawValue
        fields["label"] = label
        fields["msg"] = "\(event.message)"
        guard var line = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]) else { return }
        line.append(0x0A)
        FileHandle.standardError.write(line)
    }
}
