import Foundation
import Testing

/// The HTTP/1.1 connection (`FunctionHTTPChannel`) over real loopback
/// sockets: framing, order and the ends of a connection, as a client sees them.
@Suite(.timeLimit(.minutes(1))) struct HTTPConnectionTests {
    private static let health = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    private func withConnection(_ body: @escaping @Sendable (RawSocket) async throws -> Void) async throws {
        try await TestGateway.run(testing: .live) { gateway in
            let socket = try await RawSocket.connect(port: try #require(gateway.client.port))
            defer { socket.close() }
            try await body(socket)
        }
    }

    /// The status codes of the responses in `answer`, in order.
    private func statuses(_ answer: String) -> [String] {
        answer.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
    }

    @Test func pipelinedRequestsAreAnsweredInOrderEvenAfterTheClientStopsSending() async throws {
        try await withConnection { socket in
            try await socket.send(Self.health + "GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + Self.health)
            socket.shutdownWrite()
            let (answer, closed) = await socket.read(for: .seconds(5))
            #expect(statuses(answer) == ["200", "404", "200"], "\(answer)")
            #expect(closed, "the connection stayed open after its client's last request")
        }
    }

    @Test func bytesThatAreNotHTTPAreRefusedWith400AndTheConnectionCloses() async throws {
        try await withConnection { socket in
            try await socket.send("HELLO THERE\r\n\r\n")
            let (answer, closed) = await socket.read(for: .seconds(5))
            #expect(answer.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(answer)")
            #expect(answer.contains("Connection: close\r\n"))
            #expect(closed)
        }
    }

    @Test func anHTTP10RequestIsAnsweredAndItsConnectionClosed() async throws {
        try await withConnection { socket in
            try await socket.send("GET /healthz HTTP/1.0\r\n\r\n")
            let (answer, closed) = await socket.read(for: .seconds(5))
            #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(answer)")
            #expect(answer.contains("Connection: close\r\n") && answer.hasSuffix("{\"status\":\"ok\"}"), "\(answer)")
            #expect(closed)
        }
    }

    @Test func aBodyDeclaredOverTheLimitIsRefusedBeforeItIsSent() async throws {
        try await withConnection { socket in
            try await socket.send(
                "POST /v1/threads/create HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + "Content-Length: 5000000\r\n\r\n")
            let (answer, _) = await socket.read(for: .seconds(5), until: { $0.contains("}}") })
            #expect(answer.hasPrefix("HTTP/1.1 413 "), "\(answer)")
            #expect(answer.contains("payload_too_large"))
        }
    }

    @Test func aClientExpecting100ContinueIsToldToSendItsBody() async throws {
        try await withConnection { socket in
            let body = #"{"accountId":"01HZ0000000000000000000001","title":"continued"}"#
            try await socket.send(
                "POST /v1/threads/create HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(body.utf8.count)\r\nExpect: 100-continue\r\n\r\n")
            let (interim, _) = await socket.read(for: .seconds(5), until: { $0.hasSuffix("\r\n\r\n") })
            #expect(interim == "HTTP/1.1 100 Continue\r\n\r\n")
            try await socket.send(body)
            let (answer, _) = await socket.read(for: .seconds(5), until: { $0.contains("\"version\"") })
            #expect(answer.hasPrefix("HTTP/1.1 201 Created\r\n"), "\(answer)")
        }
    }

    @Test func aResponseToHEADCarriesNoBodyAndTheConnectionGoesOn() async throws {
        try await withConnection { socket in
            try await socket.send("HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + Self.health)
            let (answer, _) = await socket.read(for: .seconds(5), until: { $0.hasSuffix("{\"status\":\"ok\"}") })
            // The first response's declared length is not followed by a body: the next status line comes right after its head.
            let responses = answer.components(separatedBy: "HTTP/1.1 ").dropFirst()
            #expect(responses.count == 2, "\(answer)")
            #expect(responses.first?.hasSuffix("\r\n\r\n") == true, "\(answer)")
            #expect(responses.last?.hasPrefix("200 OK") == true)
        }
    }
}
