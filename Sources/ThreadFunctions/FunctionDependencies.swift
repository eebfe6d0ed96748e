public import EventStore
public import ThreadDomain

/// What the handlers of one process share, built once at the edge.
public struct FunctionDependencies: Sendable {
    public var commandRunner: CommandRunner
    public var createReservations: any CreateReservations
    public var commandObserver: any CommandObserver

    public init(
        commandRunner: CommandRunner, createReservations: any CreateReservations,
        commandObserver: any CommandObserver = NoCommandObserver()
    ) {
        self.commandRunner = commandRunner
        self.createReservations = createReservations
        self.commandObserver = commandObserver
    }
}

/// Keeps the thread id generated for a create-thread that carries an
/// idempotency key but no thread id, so its retry lands on the same thread.
public protocol CreateReservations: Sendable {
    /// Reserves `candidate` under `idempotencyKey` for 24 hours, or answers the
    /// id an earlier call reserved under that key.
    func reserveThreadId(_ candidate: ThreadID, idempotencyKey: String) async throws(FunctionError) -> ThreadID
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
