public import Foundation
import LocalRedis

/// A private `redis-server` under the project's ACL (k8s/base/redis/users.acl.template,
/// rendered by the same render-acl.sh Kubernetes runs), with fresh random passwords
/// for `threadweave` and `threadweave-setup`, and one more user, `probe` (PING and
/// INFO only), through which the harness sees the server come up.
public final class ACLTestServer: Sendable {
    public static let runtimeUser = "threadweave"
    public static let setupUser = "threadweave-setup"

    public let server: RedisTestServer
    public let namespace: String
    public let runtimePassword: String
    public let setupPassword: String
    /// Files holding the passwords, each with a trailing newline, as a Secret might.
    public let runtimePasswordFile: String
    public let setupPasswordFile: String

    /// `redis://127.0.0.1:<port>`, without credentials.
    public var url: String { server.url }
    /// `redis://<user>@127.0.0.1:<port>`: the user in the URL, the password from a file.
    public func url(user: String) -> String { url.replacingOccurrences(of: "redis://", with: "redis://\(user)@") }

    private init(
        server: RedisTestServer, namespace: String, runtimePassword: String, setupPassword: String, directory: URL
    ) {
        self.server = server
        self.namespace = namespace
        self.runtimePassword = runtimePassword
        self.setupPassword = setupPassword
        runtimePasswordFile = directory.appendingPathComponent("runtime.password").path
        setupPasswordFile = directory.appendingPathComponent("setup.password").path
    }

    /// Runs `body` with the server; the server is stopped and its files removed afterwards.
    public static func with<Result>(namespace: String, _ body: (ACLTestServer) async throws -> Result) async throws -> Result {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tw-acl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let runtimePassword = randomPassword()
        let setupPassword = randomPassword()
        let probePassword = randomPassword()
        try Data((runtimePassword + "\n").utf8).write(to: directory.appendingPathComponent("runtime.password"))
        try Data((setupPassword + "\n").utf8).write(to: directory.appendingPathComponent("setup.password"))
        let aclFile = directory.appendingPathComponent("users.acl")
        try await runProcess([
            "/bin/sh", repositoryRoot.appendingPathComponent("k8s/base/redis/render-acl.sh").path,
            repositoryRoot.appendingPathComponent("k8s/base/redis/users.acl.template").path, namespace,
            directory.appendingPathComponent("runtime.password").path,
            directory.appendingPathComponent("setup.password").path, aclFile.path,
        ])
        let handle = try FileHandle(forWritingTo: aclFile)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("user probe on >\(probePassword) +ping +info\n".utf8))
        try handle.close()
        return try await RedisTestServer.with(
            arguments: ["--aclfile", aclFile.path], access: .init(username: "probe", password: probePassword)
        ) { server in
            try await body(
                ACLTestServer(
                    server: server, namespace: namespace, runtimePassword: runtimePassword, setupPassword: setupPassword,
                    directory: directory))
        }
    }

    /// 32 random letters and digits.
    private static func randomPassword() -> String {
        let characters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return String((0..<32).map { _ in characters.randomElement()! })
    }
}

/// The repository's root, from this file's place in it.
public let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// Runs a program to its end (polling, so no cooperative thread blocks); throws unless it exits 0.
public func runProcess(_ arguments: [String], in directory: URL? = nil) async throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    if let directory { process.currentDirectoryURL = directory }
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    while process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
    guard process.terminationStatus == 0 else {
        throw LocalRedisError("\(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
    }
}
