import Foundation
import LocalRedis
import RedisClient
import RedisTestSupport
import Testing

/// `rediss://` against Debian's redis-server started with a TLS port only
/// (`--port 0 --tls-port`), with a CA and certificates `openssl` makes per run.
@Suite(.serialized) struct RedisTLSTests {
    @Test func commandsRunOverTLSWhenTheServerIsTrusted() async throws {
        try await withTLSServer { server, certificates in
            let tls = try RedisTLS(caFile: certificates.caFile)
            try await withConnection(url: server.url, { $0.tls = tls }) { connection async throws in
                let key = TestRedis.uniqueNamespace() + ":tls"
                #expect(try await connection.send(RedisCommand("SET", key, "over tls")) == .simpleString("OK"))
                #expect(try await connection.send(RedisCommand("GET", key)).string == "over tls")
                // Pipelining is unchanged under TLS.
                let replies = try await connection.pipeline((0..<50).map { RedisCommand("INCR", key + ":n\($0 % 5)") })
                #expect(replies.count == 50 && replies.allSatisfy { (try? $0.get()) != nil })
                #expect(try await connection.send(RedisCommand("GET", key + ":n0")).string == "10")
            }
            // The pool's connections take the same TLS settings.
            try await withPool(url: server.url, { $0.tls = tls }) { pool async throws in
                #expect(try await pool.send(RedisCommand("PING")) == .simpleString("PONG"))
            }
        }
    }

    @Test func aServerSignedByAnotherCAIsRefusedAtConnect() async throws {
        try await withTLSServer { server, certificates in
            let error = await #expect(throws: RedisError.self) {
                try await connect(url: server.url) { $0.tls = try? RedisTLS(caFile: certificates.otherCAFile) }
            }
            #expect(error?.code == .tlsHandshakeFailed, "\(error.map { "\($0)" } ?? "")")
            #expect(error?.message.contains("TLS handshake with 127.0.0.1:\(server.port) failed") == true)
            #expect(error?.message.contains("CERTIFICATE_VERIFY_FAILED") == true)
        }
    }

    @Test func theCertificateMustNameTheURLsHost() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        // Plain TCP for the harness's probe, and a TLS port whose certificate names DNS:localhost only.
        let tlsPort = try freeLoopbackPort()
        try await RedisTestServer.with(
            arguments: [
                "--tls-port", String(tlsPort), "--tls-cert-file", certificates.localhostCertificateFile,
                "--tls-key-file", certificates.localhostKeyFile, "--tls-auth-clients", "no",
            ]) { server in
            let tls = try RedisTLS(caFile: certificates.caFile)
            try await withConnection(url: "rediss://localhost:\(tlsPort)", { $0.tls = tls }) { connection async throws in
                #expect(try await connection.send(RedisCommand("PING")) == .simpleString("PONG"))
            }
            // The same server by its address: the certificate does not name 127.0.0.1.
            let error = await #expect(throws: RedisError.self) {
                try await connect(url: "rediss://127.0.0.1:\(tlsPort)") { $0.tls = tls }
            }
            #expect(error?.code == .tlsHandshakeFailed, "\(error.map { "\($0)" } ?? "")")
        }
    }

    @Test func aClientCertificateIsPresentedForMutualTLS() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let arguments = certificates.serverArguments.dropLast(2) + ["--tls-auth-clients", "yes"]
        let probe = try RedisTLS(
            caFile: certificates.caFile, certificateFile: certificates.clientCertificateFile, keyFile: certificates.clientKeyFile)
        try await RedisTestServer.with(arguments: Array(arguments), access: .init(tls: probe)) { server in
            try await withConnection(url: server.url, { $0.tls = probe }) { connection async throws in
                #expect(try await connection.send(RedisCommand("PING")) == .simpleString("PONG"))
            }
            // Without one the server closes the connection (under TLS 1.3 after the client's side of the
            // handshake is done, so it shows at the first command).
            let tls = try RedisTLS(caFile: certificates.caFile)
            await #expect(throws: RedisError.self) {
                try await withConnection(url: server.url, { $0.tls = tls }) { connection async throws in
                    try await connection.send(RedisCommand("PING"))
                }
            }
        }
    }

    @Test func unreadableTLSFilesAreReportedByName() throws {
        let error = #expect(throws: RedisError.self) { try RedisTLS(caFile: "/nonexistent/ca.pem") }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("/nonexistent/ca.pem") == true)
        #expect(throws: RedisError.self) { try RedisTLS(certificateFile: "/nonexistent/client.pem") }
    }

    private func withTLSServer(_ body: (RedisTestServer, TestCertificates) async throws -> Void) async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        try await RedisTestServer.with(
            arguments: certificates.serverArguments, access: .init(tls: try RedisTLS(caFile: certificates.caFile))) { server in
            #expect(server.url.hasPrefix("rediss://127.0.0.1:"))
            try await body(server, certificates)
        }
    }
}
