import ArgumentParser
import Foundation

@main
struct Threadweave: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "threadweave",
        abstract: "ThreadWeave: event-sourced chat threads on Redis Streams.",
        version: ThreadweaveVersion.current,
        subcommands: [
            SetupCommand.self, EventsCommand.self, ManifestsCommand.self,
            ServeCommand.self, FunctionCommand.self, BenchCommand.self,
            WorkerCommand.self, RebuildCommand.self, ReclaimCommand.self, DeadLettersCommand.self, TokenCommand.self,
            RedisServerCommand.self,
        ]
    )

    /// ArgumentParser's `main`, exiting with the statuses of `ExitStatus`.
    static func main() async {
        do {
            var command = try await asyncParseAsRoot(nil)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            guard let status = ExitStatus(error, parserCode: exitCode(for: error)) else { exit(withError: error) }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(status.rawValue)
        }
    }
}
