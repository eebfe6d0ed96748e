import ArgumentParser
import EventStore
import Foundation
import ReadModel
import RedisClient

/// The exit statuses of `threadweave` (README, "Exit codes"): one table.
enum ExitStatus: Int32 {
    case success = 0
    /// Anything else that went wrong.
    case failure = 1
    /// The command line is wrong: unknown subcommand or option, a bad or missing value.
    case usage = 2
    /// Redis could not be reached or is not ready (loading, failing over): worth retrying later.
    case redisUnavailable = 3
    /// Another `rebuild` of the namespace holds the lock.
    case rebuildRunning = 4

    /// The status for an error that ArgumentParser would map otherwise (it
    /// answers 64 for usage and 1 for everything it does not know); nil to
    /// keep ArgumentParser's own (0 for `--help` and `--version`, an `ExitCode` thrown as it is).
    init?(_ error: any Error, parserCode: ExitCode) {
        if parserCode == .validationFailure {
            self = .usage
        } else if let error = error as? ReadModelError, error.code == .locked {
            self = .rebuildRunning
        } else if Self.isRedisUnavailable(error) {
            self = .redisUnavailable
        } else {
            return nil
        }
    }

    private static func isRedisUnavailable(_ error: any Error) -> Bool {
        switch error {
        case let error as RedisError: error.isTransient
        case let error as ReadModelError: error.code == .unavailable
        case let error as EventStoreError: error.code == .unavailable
        default: false
        }
    }
}
