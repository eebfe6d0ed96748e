import ArgumentParser

@main
struct Threadweave: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "threadweave",
        abstract: "ThreadWeave: event-sourced chat threads on Redis Streams.",
        subcommands: [
            SetupCommand.self, EventsCommand.self, ManifestsCommand.self,
            ServeCommand.self, FunctionCommand.self, BenchCommand.self,
            WorkerCommand.self, RebuildCommand.self, ReclaimCommand.self, DeadLettersCommand.self, TokenCommand.self,
        ]
    )
}
