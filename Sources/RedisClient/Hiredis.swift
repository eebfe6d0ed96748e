import CHiredis
import NIOCore

/// hiredis's RESP parser, fed with bytes from the socket. Not thread-safe:
/// one reader belongs to one channel and is used only on its event loop.
final class RESPReplyReader {
    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        guard let reader = redisReaderCreate() else {
            fatalError("hiredis could not allocate a reply reader (out of memory)")
        }
        self.reader = reader
    }

    deinit {
        redisReaderFree(reader)
    }

    func feed(_ buffer: ByteBuffer) throws(RedisError) {
        let status = buffer.withUnsafeReadableBytes { bytes in
            redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        guard status == REDIS_OK else { throw readerError() }
    }

    /// The next complete reply, or nil when more bytes are needed. A top-level
    /// (or nested) error reply comes back as `.failure` with code `.server`; a
    /// malformed stream throws `.protocolError` and leaves the reader unusable.
    func nextReply() throws(RedisError) -> Result<RedisValue, RedisError>? {
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else { throw readerError() }
        guard let raw else { return nil }
        let reply = raw.assumingMemoryBound(to: redisReply.self)
        defer { freeReplyObject(raw) }
        do {
            return .success(try Self.convert(reply))
        } catch {
            return .failure(error)
        }
    }

    /// Copies hiredis's reply tree into a `RedisValue`. RedisValue has no error
    /// case, so an error nested in an array (rare in RESP2: EXEC, Lua tables)
    /// fails the whole reply with that error's text.
    private static func convert(_ reply: UnsafePointer<redisReply>) throws(RedisError) -> RedisValue {
        let node = reply.pointee
        switch node.type {
        case REDIS_REPLY_STRING:
            return .bulkString(bytes(node))
        case REDIS_REPLY_STATUS:
            return .simpleString(String(decoding: bytes(node), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int(node.integer))
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(node.elements)
            for index in 0..<node.elements {
                guard let element = node.element[index] else {
                    throw RedisError(code: .protocolError, message: "hiredis returned an array with a missing element")
                }
                elements.append(try convert(element))
            }
            return .array(elements)
        case REDIS_REPLY_ERROR:
            throw RedisError(code: .server, message: String(decoding: bytes(node), as: UTF8.self))
        default:
            throw RedisError(code: .protocolError, message: "unexpected hiredis reply type \(node.type)")
        }
    }

    private static func bytes(_ node: redisReply) -> [UInt8] {
        guard let start = node.str, node.len > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: start, count: node.len))
    }

    private func readerError() -> RedisError {
        let text = withUnsafeBytes(of: reader.pointee.errstr) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return RedisError(code: .protocolError, message: "invalid reply from server: \(text)")
    }
}

/// Encodes commands as RESP with hiredis's formatter, passing explicit
/// lengths so arguments may contain any bytes, NUL included.
enum RESPCommandEncoder {
    static func encode(_ command: RedisCommand, into buffer: inout ByteBuffer) throws(RedisError) {
        if let encoded = command.encoded {
            buffer.writeBytes(encoded)
            return
        }
        // An empty multi-bulk gets no reply from Redis, which would misalign every later reply.
        guard command.argumentCount > 0 else {
            throw RedisError(code: .protocolError, message: "cannot send an empty command")
        }
        // Every argument is empty: point at this byte, so the base address exists.
        var placeholder: UInt8 = 0
        let count = command.argumentCount
        let written: Bool = command.storage.withUnsafeBufferPointer { storage in
            withUnsafePointer(to: &placeholder) { placeholder in
                withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: count) { pointers in
                    withUnsafeTemporaryAllocation(of: Int.self, capacity: count) { lengths in
                        let base = UnsafeRawPointer(storage.baseAddress ?? placeholder)
                        var start = 0
                        for (index, end) in command.ends.enumerated() {
                            pointers[index] = (base + start).assumingMemoryBound(to: CChar.self)
                            lengths[index] = end - start
                            start = end
                        }
                        // The sds formatter writes lengths with hiredis's own digit writer;
                        // `redisFormatCommandArgv` calls sprintf once per argument.
                        var formatted: UnsafeMutablePointer<CChar>?
                        let length = redisFormatSdsCommandArgv(&formatted, Int32(count), pointers.baseAddress, lengths.baseAddress)
                        guard length >= 0, let formatted else { return false }
                        defer { redisFreeSdsCommand(formatted) }
                        buffer.writeBytes(UnsafeRawBufferPointer(start: formatted, count: Int(length)))
                        return true
                    }
                }
            }
        }
        guard written else {
            throw RedisError(code: .protocolError, message: "hiredis could not format \(command.name)")
        }
    }
}
