import Foundation

/// One server-sent event as a client sees it.
struct ServerSentEvent: Equatable {
    var id: String?
    var event: String?
    var data: String
}

/// A minimal HTTP/1.1 client over a real loopback socket, for responses that
/// stay open (server-sent events): it reads the head, de-chunks the body, and
/// hands out events as they arrive. Test clients of HummingbirdTesting wait
/// for the whole body, which a watch never ends on its own.
///
/// Blocking socket calls run on a dispatch queue behind a continuation, never
/// on the cooperative pool; every read gives up after `readTimeout`.
final class EventStreamClient: @unchecked Sendable {
    let status: Int
    /// Header names lowercased.
    let headers: [String: String]
    private let socket: Int32
    private var raw: [UInt8]
    private var text = ""
    private var isChunked: Bool
    private var bodyEnded = false

    private init(socket: Int32, status: Int, headers: [String: String], rest: [UInt8]) {
        self.socket = socket
        self.status = status
        self.headers = headers
        self.raw = rest
        self.isChunked = headers["transfer-encoding"]?.lowercased() == "chunked"
    }

    /// Connects, sends `GET path` with `headers`, and reads the response head.
    static func get(
        port: Int, _ path: String, headers: [String: String] = [:], readTimeout: Duration = .seconds(10)
    ) async throws -> EventStreamClient {
        let socket = try await blocking { () throws -> Int32 in
            try connectedLoopbackSocket(
                port: port, receiveTimeout: timeval(tv_sec: Int(readTimeout.components.seconds), tv_usec: 0))
        }
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAccept: text/event-stream\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        let bytes = Array(request.utf8)
        guard send(socket, bytes, bytes.count, 0) == bytes.count else {
            close(socket)
            throw TestFailure("could not send the request")
        }

        var received: [UInt8] = []
        let separator = Array("\r\n\r\n".utf8)
        while true {
            if let end = received.firstRange(of: separator) {
                let head = String(decoding: received[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
                let status = head.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
                var fields: [String: String] = [:]
                for line in head.dropFirst() {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
                return EventStreamClient(socket: socket, status: status, headers: fields, rest: Array(received[end.upperBound...]))
            }
            guard let more = try await receive(from: socket) else {
                close(socket)
                throw TestFailure("the connection closed before the response head")
            }
            received += more
        }
    }

    /// The next event (comments skipped), or nil when the response ended.
    func nextEvent() async throws -> ServerSentEvent? {
        while true {
            while let end = text.range(of: "\n\n") {
                let block = text[..<end.lowerBound]
                text.removeSubrange(..<end.upperBound)
                var event = ServerSentEvent(id: nil, event: nil, data: "")
                var hasField = false
                for line in block.split(separator: "\n", omittingEmptySubsequences: false) where !line.hasPrefix(":") {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    let value = line[line.index(after: colon)...].drop { $0 == " " }
                    hasField = true
                    switch line[..<colon] {
                    case "id": event.id = String(value)
                    case "event": event.event = String(value)
                    case "data": event.data += event.data.isEmpty ? String(value) : "\n" + value
                    default: break
                    }
                }
                if hasField { return event }
            }
            guard try await readBody() else { return nil }
        }
    }

    /// The whole body of a response that ends (an error answer).
    func body() async throws -> String {
        while try await readBody() {}
        defer { text = "" }
        return text
    }

    /// Closes the connection: the client goes away.
    func disconnect() {
        shutdown(socket, Int32(SHUT_RDWR))
        close(socket)
    }

    /// Appends the next piece of the body to `text`; false once it ended.
    private func readBody() async throws -> Bool {
        guard !bodyEnded else { return false }
        if !isChunked {
            if let length = headers["content-length"].flatMap(Int.init) {
                while raw.count < length {
                    guard let more = try await Self.receive(from: socket) else { break }
                    raw += more
                }
                text += String(decoding: raw.prefix(length), as: UTF8.self)
                bodyEnded = true
                return true
            }
            guard let more = try await Self.receive(from: socket) else {
                bodyEnded = true
                return false
            }
            text += String(decoding: more, as: UTF8.self)
            return true
        }
        // Chunked: `<hex size>\r\n<bytes>\r\n`, ending with a zero-size chunk.
        let lineEnd = Array("\r\n".utf8)
        while true {
            if let sizeEnd = raw.firstRange(of: lineEnd) {
                let sizeText = String(decoding: raw[..<sizeEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                    throw TestFailure("bad chunk size '\(sizeText)'")
                }
                if size == 0 {
                    bodyEnded = true
                    return false
                }
                let chunkEnd = sizeEnd.upperBound + size
                if raw.count >= chunkEnd + 2 {
                    text += String(decoding: raw[sizeEnd.upperBound..<chunkEnd], as: UTF8.self)
                    raw.removeFirst(chunkEnd + 2)
                    return true
                }
            }
            guard let more = try await Self.receive(from: socket) else {
                bodyEnded = true
                return false
            }
            raw += more
        }
    }

    /// Bytes as they arrive; nil when the peer closed. Throws when nothing came within the read timeout.
    private static func receive(from socket: Int32) async throws -> [UInt8]? {
        try await blocking { () throws -> [UInt8]? in
            var buffer = [UInt8](repeating: 0, count: 16_384)
            let count = recv(socket, &buffer, buffer.count, 0)
            if count < 0 { throw TestFailure("no bytes within the read timeout (errno \(errno))") }
            return count == 0 ? nil : Array(buffer.prefix(count))
        }
    }

    private static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// A blocking TCP socket connected to `127.0.0.1:port`, whose reads give up
/// after `receiveTimeout` (so no test can hang on a silent server).
func connectedLoopbackSocket(port: Int, receiveTimeout: timeval) throws -> Int32 {
    let descriptor = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw TestFailure("socket() failed") }
    var timeout = receiveTimeout
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    let connected = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            Foundation.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
    guard connected else {
        Foundation.close(descriptor)
        throw TestFailure("could not connect to port \(port)")
    }
    return descriptor
}
