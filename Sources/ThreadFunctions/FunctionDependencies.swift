public import EventStore
public import ReadModel
public import ThreadDomain

/// What the handlers of one process share, built once at the edge.
public struct FunctionDependencies: Sendable {
    public var commandRunner: CommandRunner
    public var createReservations: any CreateReservations
    public var commandObserver: any CommandObserver
    /// The read side, one per process (its `minVersion` waits are shared);
    /// nil where there is none (in-memory tests of the command layer).
    public var readModel: ReadModelReader?
    /// Watch streams, one per process (it counts the open streams); nil where there is none.
    public var watcher: ThreadWatcher?

    public init(
        commandRunner: CommandRunner, createReservations: any CreateReservations,
        commandObserver: any CommandObserver = NoCommandObserver(),
        readModel: ReadModelReader? = nil, watcher: ThreadWatcher? = nil
    ) {
        self.commandRunner = commandRunner
        self.createReservations = createReservations
        self.commandObserver = commandObserver
        self.readModel = readModel
        self.watcher = watcher
    }
}

/// Keeps the thread id generated for a create-thread that carries an
/// idempotency key but no thread id, so its retry lands on the same thread.
public protocol CreateReservations: Sendable {
    /// Reserves `candidate` under `idempotencyKey` for 24 hours, or answers the
    /// id an earlier call reserved under that key.
    func reserveThreadId(_ candidate: ThreadID, for account: AccountID, idempotencyKey: String) async throws(FunctionError) -> ThreadID
}

/// Told how every command ended, for metrics.
public protocol CommandObserver: Sendable {
    /// `attempts` counts decide-and-append rounds (0 for a replayed outcome);
    /// `error` is nil on success.
    func commandFinished(function: String, attempts: Int, error: FunctionError.Code?)
}

public struct NoCommandObserver: CommandObserver {
    public init() {}
    public func commandFinished(function: String, attempts: Int, error: FunctionError.Code?) {}
}
