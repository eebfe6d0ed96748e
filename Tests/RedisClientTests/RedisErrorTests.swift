import Testing

import RedisClient

/// Which failures are passing states of Redis (answered 503 and retried), and
/// which are faults of the command.
@Suite struct RedisErrorTests {
    /// The server's own texts for its passing states (Redis 7.0).
    static let transientReplies = [
        "LOADING Redis is loading the dataset in memory",
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "CLUSTERDOWN The cluster is down",
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        "READONLY You can't write against a read only replica.",
        "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.",
        "OOM command not allowed when used memory > 'maxmemory'.",
        "NOREPLICAS Not enough good replicas to write.",
    ]

    @Test(arguments: transientReplies)
    func transientServerRepliesArePassingStates(_ reply: String) {
        #expect(RedisError(code: .server, message: reply).isTransient)
    }

    @Test(arguments: [
        "ERR unknown command 'NOPE'", "WRONGTYPE Operation against a key holding the wrong kind of value",
        "ERR Function not found", "NOSCRIPT No matching script.", "BUSYGROUP Consumer Group name already exists",
        "LOADINGX not a state", "",
    ])
    func otherServerRepliesAreFaultsOfTheCommand(_ reply: String) {
        #expect(!RedisError(code: .server, message: reply).isTransient)
    }

    @Test func connectionFailuresAreTransientAndOtherClientFailuresAreNot() {
        for code: RedisError.Code in [.connectionFailed, .connectionClosed, .timeout, .shutdown] {
            #expect(RedisError(code: code, message: "x").isTransient, "\(code)")
        }
        for code: RedisError.Code in [.invalidURL, .protocolError, .cancelled] {
            #expect(!RedisError(code: code, message: "x").isTransient, "\(code)")
        }
    }
}
