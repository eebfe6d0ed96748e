public import Foundation

/// A throwaway certificate authority and the certificates it signed, made
/// with `openssl` in a fresh temporary directory: a server certificate for
/// `IP:127.0.0.1`, another for `DNS:localhost` only (connecting to
/// 127.0.0.1 with it is a name mismatch), a client certificate for mutual
/// TLS; plus a second, unrelated CA that trusts none of them.
public struct TestCertificates: Sendable {
    public let directory: URL
    public var caFile: String { path("ca.pem") }
    public var otherCAFile: String { path("other-ca.pem") }
    public var serverCertificateFile: String { path("server.pem") }
    public var serverKeyFile: String { path("server.key") }
    public var localhostCertificateFile: String { path("localhost.pem") }
    public var localhostKeyFile: String { path("localhost.key") }
    public var clientCertificateFile: String { path("client.pem") }
    public var clientKeyFile: String { path("client.key") }

    /// `redis-server` arguments for TLS with these files; clients need no certificate.
    public var serverArguments: [String] {
        [
            "--tls-cert-file", serverCertificateFile, "--tls-key-file", serverKeyFile, "--tls-ca-cert-file", caFile,
            "--tls-auth-clients", "no",
        ]
    }

    public static func make() async throws -> TestCertificates {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tw-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(directory: directory)
        do {
            try await certificates.generate()
        } catch {
            certificates.remove()
            throw error
        }
        return certificates
    }

    public func remove() {
        try? FileManager.default.removeItem(at: directory)
    }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private func generate() async throws {
        let openssl = ["/usr/bin/env", "openssl"]
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for ca in ["ca", "other-ca"] {
            try await runProcess(
                openssl + ["req", "-x509"] + key + ["-keyout", "\(ca).key", "-out", "\(ca).pem", "-days", "2", "-subj", "/CN=\(ca)"],
                in: directory)
        }
        try Data("subjectAltName=IP:127.0.0.1\n".utf8).write(to: directory.appendingPathComponent("server.ext"))
        try Data("subjectAltName=DNS:localhost\n".utf8).write(to: directory.appendingPathComponent("localhost.ext"))
        try Data("extendedKeyUsage=clientAuth\n".utf8).write(to: directory.appendingPathComponent("client.ext"))
        for leaf in ["server", "localhost", "client"] {
            try await runProcess(
                openssl + ["req"] + key + ["-keyout", "\(leaf).key", "-out", "\(leaf).csr", "-subj", "/CN=\(leaf)"], in: directory)
            try await runProcess(
                openssl + [
                    "x509", "-req", "-in", "\(leaf).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                    "-out", "\(leaf).pem", "-days", "2", "-extfile", "\(leaf).ext",
                ], in: directory)
        }
    }
}
