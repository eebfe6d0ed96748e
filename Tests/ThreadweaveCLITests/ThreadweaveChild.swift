import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A `threadweave <subcommand>` child of this test process. Only this child is
/// ever signalled, by its pid; waits poll with async sleeps.
final class ThreadweaveChild: @unchecked Sendable {
    private let process: Process

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// `log`: a file that receives the child's stderr (its log), for tests that read it.
    /// `softOpenFileLimit`: started under that open-file limit, as from a shell with `ulimit -Sn`.
    init(
        _ arguments: [String], environment: [String: String]? = nil, log: URL? = nil, standardInput: Pipe? = nil,
        standardOutput: Pipe? = nil, softOpenFileLimit: Int? = nil
    ) throws {
        process = Process()
        if let softOpenFileLimit {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "ulimit -Sn \(softOpenFileLimit) && exec \"$0\" \"$@\"", try FunctionProcess.binary().path] + arguments
        } else {
            process.executableURL = try FunctionProcess.binary()
            process.arguments = arguments
        }
        if let environment { process.environment = environment }
        if let standardInput { process.standardInput = standardInput }
        process.standardOutput = standardOutput ?? FileHandle.nullDevice
        if let log {
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            process.standardError = try FileHandle(forWritingTo: log)
        } else {
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
    }

    /// Polls `url` for up to 30 s until it answers `expected`; false at once should this child exit.
    func waitForStatus(_ expected: Int, at url: String) async -> Bool {
        for _ in 0..<300 {
            guard isRunning else { return false }
            if let (_, response) = try? await URLSession.shared.data(from: URL(string: url)!),
                (response as? HTTPURLResponse)?.statusCode == expected
            {
                return true
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    func signal(_ signal: Int32) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, signal)
    }

    /// Waits for the exit (up to `timeout`); nil if it is still running.
    func waitForExit(timeout: Duration = .seconds(10)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    func stop(grace: Duration = .seconds(10)) async {
        signal(SIGTERM)
        if await waitForExit(timeout: grace) == nil {
            signal(SIGKILL)
            _ = await waitForExit()
        }
    }
}

/// Runs `threadweave <arguments>` to its end: the exit status and what it wrote to stderr.
func runThreadweave(_ arguments: [String], environment: [String: String]? = nil) async throws -> (status: Int32, errors: String) {
    let run = try await captureThreadweave(arguments, environment: environment)
    return (run.status, run.errors)
}

/// Runs `threadweave <arguments>` to its end: the exit status and what it wrote to stdout and stderr.
func captureThreadweave(
    _ arguments: [String], environment: [String: String]? = nil
) async throws -> (status: Int32, output: String, errors: String) {
    let process = Process()
    process.executableURL = try FunctionProcess.binary()
    process.arguments = arguments
    if let environment { process.environment = environment }
    let output = Pipe(), errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    // The blocking reads run on a dispatch queue, both at once (either pipe may fill):
    // the cooperative pool must never wait on a pipe.
    async let printed = readToEnd(output)
    async let complained = readToEnd(errors)
    let (outputData, errorData) = await (printed, complained)
    while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
    return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
}

private func readToEnd(_ pipe: Pipe) async -> Data {
    await withCheckedContinuation { (continuation: CheckedContinuation<Data, Never>) in
        DispatchQueue.global().async { continuation.resume(returning: pipe.fileHandleForReading.readDataToEndOfFile()) }
    }
}

/// Live redis-server processes whose command line or working directory names `dataDirectory`.
func redisServers(using dataDirectory: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
        // Redis rewrites its title ("redis-server unix:/…"); argv[0] tells it from a shell that runs it.
        guard let command = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8),
            let program = command.split(whereSeparator: { $0 == "\0" || $0 == " " }).first,
            program.split(separator: "/").last == "redis-server",
            let status = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            !status.contains(") Z ")
        else { return false }
        let workingDirectory = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd")) ?? ""
        return command.contains(dataDirectory) || workingDirectory.hasPrefix(dataDirectory)
    }
}
