import Foundation
import FunctionRuntime
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
            bootstrap({ label, provider in JSONLogHandler(label: label, metadataProvider: provider) }, metadataProvider: .requestId)
        } else {
            bootstrap({ label, provider in TextLogHandler(label: label, metadataProvider: provider) }, metadataProvider: .requestId)
        }
    }
}

/// The part both handlers share: the logger's metadata, kept as set and
/// merged with its provider's (the request's id) and a line's own only when
/// that line is written.
protocol MetadataKeepingLogHandler: LogHandler {
    var metadata: Logger.Metadata { get set }
    var metadataProvider: Logger.MetadataProvider? { get set }
}

extension MetadataKeepingLogHandler {
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// The logger's metadata, then its provider's, then the event's own: a later one's key wins.
    func metadata(with event: LogEvent) -> Logger.Metadata {
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty { merged.merge(provided) { $1 } }
        if let own = event.metadata, !own.isEmpty { merged.merge(own) { $1 } }
        return merged
    }
}

/// swift-log's `StreamLogHandler` text lines on standard error
/// (`<ts> <level> <label>: <key=value …> [<source>] <message>`), with the
/// metadata rendered when a line is written. `StreamLogHandler` renders all
/// of it again each time a key is set: Hummingbird's request handling set one
/// on every request, some 10,000 instructions for lines that, at `info`, are
/// almost never written.
struct TextLogHandler: MetadataKeepingLogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    func log(event: LogEvent) {
        FileHandle.standardError.write(Data(line(for: event, at: Self.timestamp()).utf8))
    }

    func line(for event: LogEvent, at timestamp: String) -> String {
        let merged = metadata(with: event)
        let rendered = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return "\(timestamp) \(event.level)\(label.isEmpty ? "" : " ")\(label):\(rendered) [\(event.source)] \(event.message)\n"
    }

    /// Local time as `StreamLogHandler` writes it: `2026-12-02T15:54:40+0000`.
    private static func timestamp() -> String {
        var now = time(nil)
        var local = tm()
        localtime_r(&now, &local)
        var buffer = [CChar](repeating: 0, count: 32)
        let length = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &local)
        return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// One JSON object per line on standard error, for log collectors
/// (`LOG_FORMAT=json`): `ts level label msg` plus the metadata as strings.
struct JSONLogHandler: MetadataKeepingLogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (key, value) in metadata(with: event) {
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
