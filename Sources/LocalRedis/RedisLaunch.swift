public import Foundation

/// Runs redis-server under another program, e.g. a watchdog that stops it when
/// its parent dies: `command + [redis-server path] + Redis's arguments`, with
/// the given stdin and stdout. The program must pass SIGTERM on to Redis.
public struct RedisWrapper: @unchecked Sendable {
    public var command: [String]
    public var standardInput: Pipe
    public var standardOutput: FileHandle

    public init(command: [String], standardInput: Pipe, standardOutput: FileHandle) {
        self.command = command
        self.standardInput = standardInput
        self.standardOutput = standardOutput
    }
}

/// One server's command line, and the files it leaves in its data directory.
struct RedisLaunch: Sendable {
    let redisServer: String
    let directory: URL
    let listenArguments: [String]
    let arguments: [String]
    let wrapper: RedisWrapper?

    var logFile: URL { directory.appendingPathComponent("redis.log") }
    /// Written by Redis once it listens, also under a wrapper: the pid that must answer.
    var pidFile: URL { directory.appendingPathComponent("redis.pid") }

    /// A server started with `--requirepass` answers nothing before AUTH: the probe needs it.
    var password: String? {
        guard let index = arguments.lastIndex(of: "--requirepass"), index + 1 < arguments.count else { return nil }
        return arguments[index + 1]
    }

    func run() throws -> Process {
        try? FileManager.default.removeItem(at: pidFile)  // a killed server leaves it behind
        let redisArguments =
            listenArguments + [
                "--dir", directory.path, "--logfile", logFile.path, "--pidfile", pidFile.path,
                "--save", "", "--daemonize", "no",
            ] + arguments
        let process = Process()
        process.standardError = FileHandle.nullDevice
        if let wrapper {
            process.executableURL = URL(fileURLWithPath: wrapper.command[0])
            process.arguments = Array(wrapper.command.dropFirst()) + [redisServer] + redisArguments
            process.standardInput = wrapper.standardInput
            process.standardOutput = wrapper.standardOutput
        } else {
            process.executableURL = URL(fileURLWithPath: redisServer)
            process.arguments = redisArguments
            process.standardOutput = FileHandle.nullDevice
        }
        try Self.withChildDefaults { try process.run() }
        return process
    }

    func writtenPid() -> Int32? {
        (try? String(contentsOf: pidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// The child inherits the calling thread's signal mask, and the threads of
    /// the cooperative pool block SIGTERM: unblocked, Redis can be stopped by
    /// it. The umask makes every file Redis writes (AOF, log) private.
    private static func withChildDefaults(_ body: () throws -> Void) rethrows {
        var none = sigset_t()
        var previous = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &previous)
        let previousMask = umask(0o077)
        defer {
            umask(previousMask)
            pthread_sigmask(SIG_SETMASK, &previous, nil)
        }
        try body()
    }
}
