#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import HTTPTypes
import NIOCore

/// How a response's body ends on the wire.
enum HTTP1BodyFraming: Equatable {
    /// `Content-Length` (the response carries it).
    case length
    /// `Transfer-Encoding: chunked`: a stream of unknown length to an HTTP/1.1 client.
    case chunked
    /// A stream to an HTTP/1.0 client: the body ends when the connection does.
    case untilClose
}

/// Writes HTTP/1.1 responses as bytes: the status line and fields straight
/// from Hummingbird's `HTTPFields`, with no intermediate `HTTPHeaders`.
enum HTTP1ResponseEncoding {
    /// The head is gathered in an array and written to the buffer once: each
    /// `ByteBuffer` write checks its capacity and uniqueness, some 270
    /// instructions, and a head is some twenty pieces.
    static func writeHead(
        status: HTTPResponse.Status, fields: HTTPFields, framing: HTTP1BodyFraming, closing: Bool,
        date: String, serverName: String?, into buffer: inout ByteBuffer
    ) {
        var head: [UInt8] = []
        head.reserveCapacity(320)
        head.append("HTTP/1.1 ")
        let code = status.code
        head.append(UInt8(ascii: "0") + UInt8(code / 100 % 10))
        head.append(UInt8(ascii: "0") + UInt8(code / 10 % 10))
        head.append(UInt8(ascii: "0") + UInt8(code % 10))
        head.append(UInt8(ascii: " "))
        head.append(status.reasonPhrase)
        head.append("\r\n")
        var hasDate = false
        var hasServer = false
        for field in fields {
            switch FieldRole(field.name) {
            case .date: hasDate = true
            case .server: hasServer = true
            // The framing is this encoder's to say: a handler's would contradict it.
            case .framing: continue
            case .other: break
            }
            head.append(field.name.rawName)
            head.append(": ")
            field.withUnsafeBytesOfValue { head.append(contentsOf: $0) }
            head.append("\r\n")
        }
        if !hasDate {
            head.append("Date: ")
            head.append(date)
            head.append("\r\n")
        }
        if !hasServer, let serverName {
            head.append("Server: ")
            head.append(serverName)
            head.append("\r\n")
        }
        if framing == .chunked { head.append("Transfer-Encoding: chunked\r\n") }
        if closing { head.append("Connection: close\r\n") }
        head.append("\r\n")
        buffer.writeBytes(head)
    }

    /// The fields the encoder writes itself. By length first: comparing a
    /// name with each of four costs a string comparison per field.
    private enum FieldRole {
        case date, server, framing, other

        init(_ name: HTTPField.Name) {
            let canonical = name.canonicalName
            switch canonical.utf8.count {
            case 4 where canonical == "date": self = .date
            case 6 where canonical == "server": self = .server
            case 10 where canonical == "connection": self = .framing
            case 17 where canonical == "transfer-encoding": self = .framing
            default: self = .other
            }
        }
    }

    /// One chunk of a chunked body: its length in hex, the bytes, CRLF.
    static func writeChunk(_ chunk: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeString(String(chunk.readableBytes, radix: 16))
        buffer.writeStaticString("\r\n")
        var chunk = chunk
        buffer.writeBuffer(&chunk)
        buffer.writeStaticString("\r\n")
    }

    static let lastChunk: StaticString = "0\r\n\r\n"
}

/// The `Date` field's value, formatted once a second (RFC 9110's IMF-fixdate).
struct HTTPDate {
    private var second: time_t = -1
    private var text = ""

    mutating func current() -> String {
        let now = time(nil)
        if now != second {
            second = now
            text = Self.format(now)
        }
        return text
    }

    static func format(_ seconds: time_t) -> String {
        var seconds = seconds
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func twoDigits(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(twoDigits(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(twoDigits(parts.tm_hour)):\(twoDigits(parts.tm_min)):\(twoDigits(parts.tm_sec)) GMT"
    }
}

extension [UInt8] {
    fileprivate mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { append(contentsOf: $0) }
    }

    /// Through `withUTF8`: appending the `UTF8View` itself walked it generically.
    fileprivate mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(contentsOf: $0) }
    }
}
