import ArgumentParser
import EventStore
import ReadModel

struct SetupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setup",
        abstract: "Load the Redis Function libraries, write <namespace>:config, create the consumer groups. Idempotent."
    )

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let logger = options.makeLogger(label: "threadweave.setup")
        let configuration = try options.redisConfiguration()
        let report = try await withRedisPool(configuration, logger: logger) { pool in
            let layout = try await options.layout(on: pool)
            do {
                return try await StoreSetup.run(on: pool, layout: layout, libraries: StoreSetup.Library.all)
            } catch let error as EventStoreError where error.isPermissionDenied {
                throw RedisAccessError(
                    "Redis user '\(configuration.username ?? "default")' may not set the store up (\(error.message)); "
                        + "run setup as the set-up user (threadweave-setup in docs/SECURITY.md)")
            }
        }
        print(
            "set up namespace \(report.layout.namespace): \(report.layout.partitionCount) partitions, "
                + "\(report.groupsCreated) consumer groups created, library \(ThreadweaveLibrary.name) v\(ThreadweaveLibrary.version)"
        )
    }
}
