import Foundation

/// One server's command line, and the files it leaves in its data directory.
struct RedisLaunch: Sendable {
    let redisServer: String
    let directory: URL
    let listenArguments: [String]
    let arguments: [String]

    var logFile: URL { directory.appendingPathComponent("redis.log") }
    /// Written by Redis once it listens: the pid that must answer (Redis runs under the supervisor script).
    var pidFile: URL { directory.appendingPathComponent("redis.pid") }

    /// A server started with `--requirepass` answers nothing before AUTH: the probe needs it.
    var password: String? {
        guard let index = arguments.lastIndex(of: "--requirepass"), index + 1 < arguments.count else { return nil }
        return arguments[index + 1]
    }

    /// Redis's arguments: `arguments` come after the defaults, so they may override them.
    var redisArguments: [String] {
        listenArguments + [
            "--dir", directory.path, "--logfile", logFile.path, "--pidfile", pidFile.path,
            "--save", "", "--daemonize", "no",
        ] + arguments
    }

    /// `bash -c supervisorScript redis-supervisor <redis-server> <arguments...>`: Redis as the
    /// script's child, so that it stops however its parent ends:
    /// - SIGTERM/SIGINT to the script are passed on (after SIGCONT: a frozen Redis cannot act on them);
    /// - the script's stdin is a pipe its parent holds: at EOF (the parent closed it, or died,
    ///   even by SIGKILL) Redis gets SIGTERM, so no server outlives its owner;
    /// - umask 077 makes every file Redis writes (AOF, log, socket) private to this user.
    /// The script exits with Redis's status once Redis has exited.
    static let supervisorScript = """
        umask 077
        server="$1"; shift
        "$server" "$@" & redis=$!
        trap 'kill -CONT "$redis" 2>/dev/null; kill -TERM "$redis" 2>/dev/null' TERM INT
        (while read -r _; do :; done; kill -CONT "$redis" 2>/dev/null; kill -TERM "$redis" 2>/dev/null) <&0 &
        lifeline=$!
        while :; do
            wait "$redis"; status=$?
            [ "$status" -gt 128 ] && kill -0 "$redis" 2>/dev/null || break
        done
        kill "$lifeline" 2>/dev/null
        exit "$status"
        """

    var supervisorArguments: [String] { ["-c", Self.supervisorScript, "redis-supervisor", redisServer] + redisArguments }

    func removeStalePidFile() {
        try? FileManager.default.removeItem(at: pidFile)  // a killed server leaves it behind
    }

    func writtenPid() -> Int32? {
        (try? String(contentsOf: pidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}
