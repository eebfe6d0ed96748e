import EventStore
import Foundation
public import ThreadDomain

/// The answer of every command function: `{"threadId","version"}`, plus
/// `messageIds` for the message commands.
public struct CommandAnswer: Codable, Sendable, Hashable, CanonicalJSONWritable {
    public var threadId: ThreadID
    public var version: Int64
    public var messageIds: [MessageID]?

    /// Every command's answer, written by hand (keys sorted) as `ThreadView` is.
    public func write(to writer: inout CanonicalJSONWriter) {
        writer.beginObject()
        if let messageIds {
            writer.key("messageIds")
            writer.ids(messageIds)
        }
        writer.key("threadId")
        writer.string(threadId.rawValue)
        writer.key("version")
        writer.integer(version)
        writer.endObject()
    }

    public init(threadId: ThreadID, version: Int64, messageIds: [MessageID]? = nil) {
        self.threadId = threadId
        self.version = version
        self.messageIds = messageIds
    }
}

/// Input checks made before any Redis call, with the domain's own limits
/// (`InputLimits`); `ThreadDecider` checks them again.
enum InputRules {
    static let idempotencyKeyLength = 1...128

    static func invalid(_ message: String) -> FunctionError {
        FunctionError(.invalidRequest, message)
    }

    /// Checks `text`, trimmed as the domain records it, against `limit`.
    static func requireText(_ text: String, within limit: TextLimit, field: String) throws(FunctionError) {
        if let violation = limit.violation(of: text.trimmingWhiteSpace) {
            throw invalid("\(field) \(violation)")
        }
    }

    static func requireCount(_ count: Int, in range: ClosedRange<Int>, field: String) throws(FunctionError) {
        guard range.contains(count) else {
            throw invalid("\(field) must hold \(range.lowerBound)–\(range.upperBound) entries, got \(count)")
        }
    }

    static func requireAtMost(_ count: Int, _ maximum: Int, field: String) throws(FunctionError) {
        guard count <= maximum else { throw invalid("\(field) must hold at most \(maximum) entries, got \(count)") }
    }

    /// The key the command is recorded under: the `Idempotency-Key` header, else
    /// the body's `commandId`. Both are checked, since either may end up in a Redis key.
    static func idempotencyKey(header: String?, commandId: String?) throws(FunctionError) -> String? {
        if let header { try validateIdempotencyKey(header, field: "Idempotency-Key") }
        if let commandId { try validateIdempotencyKey(commandId, field: "commandId") }
        return header ?? commandId
    }

    private static func validateIdempotencyKey(_ key: String, field: String) throws(FunctionError) {
        let allowed = key.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: ":"), UInt8(ascii: "-"):
                true
            default:
                false
            }
        }
        guard allowed, idempotencyKeyLength.contains(key.utf8.count) else {
            throw invalid("\(field) must be 1–128 characters of A–Z, a–z, 0–9, '_', '.', ':' or '-'")
        }
    }
}

/// The part of a command's input a client may send with an idempotency key.
protocol IdempotentInput: Encodable {
    var commandId: String? { get set }
}

extension IdempotentInput {
    /// A digest of the input as decoded (ids canonical, keys sorted), without
    /// `commandId`: the same request always has the same fingerprint, however
    /// its JSON was spaced or ordered, and whichever way the key was sent.
    var fingerprint: String {
        var normalized = self
        normalized.commandId = nil
        let bytes = (try? InvocationCoding.canonicalEncoder.encode(normalized)) ?? Data()
        return fnv1a128Hex(bytes)
    }
}

/// 128-bit FNV-1a: a stable, dependency-free digest (not a security boundary —
/// it only tells one request body from another under the same key).
func fnv1a128Hex(_ bytes: some Sequence<UInt8>) -> String {
    var hash: UInt128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d
    let prime: UInt128 = 0x0000_0000_0100_0000_0000_0000_0000_013B
    for byte in bytes {
        hash ^= UInt128(byte)
        hash = hash &* prime
    }
    let text = String(hash, radix: 16)
    return String(repeating: "0", count: 32 - text.count) + text
}

/// Runs one command through the `CommandRunner` and shapes its answer. What a
/// retry must answer identically (thread id, message ids) is stored beside the
/// idempotency record and read back on a replay.
struct CommandExecution: Sendable {
    let function: String
    let runner: CommandRunner
    let observer: any CommandObserver

    init(function: String, dependencies: FunctionDependencies) {
        self.function = function
        self.runner = dependencies.commandRunner
        self.observer = dependencies.commandObserver
    }

    /// The answer fields besides `version`, kept as the idempotency record's result.
    private struct StoredResult: Codable {
        var threadId: ThreadID
        var messageIds: [MessageID]?
    }

    func run(
        _ command: ThreadCommand, on threadId: ThreadID, actor: AccountID, idempotencyKey: String?,
        fingerprint: @autoclosure () -> String, messageIds: [MessageID]? = nil, context: FunctionContext
    ) async throws(FunctionError) -> CommandAnswer {
        // The fingerprint and the stored answer serve a retry only: made when there is a key.
        var request = CommandRequest(
            threadId: threadId, command: command, actor: actor,
            idempotencyKey: idempotencyKey.map { CommandRequest.scopedIdempotencyKey($0, actor: actor) })
        if idempotencyKey != nil {
            request.fingerprint = fingerprint()
            let stored = StoredResult(threadId: threadId, messageIds: messageIds)
            request.result = String(decoding: try InvocationCoding.encode(stored), as: UTF8.self)
        }
        let outcome: CommandOutcome
        do {
            outcome = try await runner.run(request)
        } catch {
            let attempts = error.code == .conflict ? runner.configuration.maximumAttempts : 1
            observer.commandFinished(function: function, attempts: attempts, error: error.code)
            throw error
        }
        observer.commandFinished(function: function, attempts: outcome.attempts, error: nil)
        context.logger.debug(
            "command done",
            metadata: [
                "function": "\(function)", "thread": "\(threadId)", "version": "\(outcome.version)",
                "attempts": "\(outcome.attempts)", "replay": "\(outcome.isReplay)",
            ])
        guard outcome.isReplay else {
            return CommandAnswer(threadId: threadId, version: outcome.version, messageIds: messageIds)
        }
        do {
            let first = try JSONDecoder().decode(StoredResult.self, from: Data(outcome.result.utf8))
            return CommandAnswer(threadId: first.threadId, version: outcome.version, messageIds: first.messageIds)
        } catch {
            throw FunctionError(.internalError, "the first outcome of this command could not be read", underlying: error)
        }
    }
}

extension FunctionError {
    /// A rule the command or query broke: the domain's code and message.
    init(domainError: DomainError) {
        self.init(domainError.code, domainError.message, underlying: domainError)
    }

    /// A failure of the event store, as a command or a query meets it.
    init(storeError: EventStoreError) {
        switch storeError.code {
        case .unavailable:
            self.init(.unavailable, "the event store is unavailable; nothing was written", underlying: storeError)
        case .idempotencyKeyReused:
            self.init(.idempotencyKeyReused, storeError.message, underlying: storeError)
        case .corruptData, .unexpectedReply:
            self.init(.internalError, "the event store failed", underlying: storeError)
        }
    }
}
