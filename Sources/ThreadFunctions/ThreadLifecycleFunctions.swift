public import ThreadDomain

/// `create-thread`: `{"accountId","title","threadId"?,"parentThreadId"?,"remarks"?,"administratorIds"?,"memberIds"?,"commandId"?}`.
public struct CreateThreadInput: Codable, Sendable, Hashable, IdempotentInput {
    /// The creator, who is always an administrator.
    public var accountId: AccountID
    /// Chosen by the client to make retries natural; generated otherwise.
    public var threadId: ThreadID?
    public var parentThreadId: ThreadID?
    public var title: String
    public var remarks: String?
    public var administratorIds: [AccountID]?
    public var memberIds: [AccountID]?
    public var commandId: String?

    func validate() throws(FunctionError) {
        try InputRules.requireText(title, within: InputLimits.title, field: "title")
        if let remarks { try InputRules.requireText(remarks, within: InputLimits.remarks, field: "remarks") }
        if let threadId, threadId == parentThreadId {
            throw InputRules.invalid("parentThreadId names the thread itself")
        }
        try InputRules.requireAtMost(administratorIds?.count ?? 0, InputLimits.accountIds.upperBound, field: "administratorIds")
        try InputRules.requireAtMost(memberIds?.count ?? 0, InputLimits.accountIds.upperBound, field: "memberIds")
    }
}

public struct CreateThreadHandler: RegistrableFunction {
    public static let name = "create-thread"
    public static let kind = FunctionKind.command
    public static let createsResource = true

    private let execution: CommandExecution
    private let reservations: any CreateReservations

    public init(dependencies: FunctionDependencies) {
        execution = CommandExecution(function: Self.name, dependencies: dependencies)
        reservations = dependencies.createReservations
    }

    public func handle(_ input: CreateThreadInput, context: FunctionContext) async throws(FunctionError) -> CommandAnswer {
        try input.validate()
        let idempotencyKey = try InputRules.idempotencyKey(header: context.idempotencyKey, commandId: input.commandId)
        let threadId: ThreadID
        if let chosen = input.threadId {
            threadId = chosen
        } else if let idempotencyKey {
            // A retry of this create must land on the thread the first call made.
            threadId = try await reservations.reserveThreadId(
                ULID.generate(), for: input.accountId, idempotencyKey: idempotencyKey)
        } else {
            threadId = ULID.generate()
        }
        let create = CreateThread(
            threadId: threadId, creatorId: input.accountId, parentThreadId: input.parentThreadId, title: input.title,
            remarks: input.remarks, administratorIds: input.administratorIds ?? [], memberIds: input.memberIds ?? [])
        return try await execution.run(
            .createThread(create), on: threadId, actor: input.accountId, idempotencyKey: idempotencyKey,
            fingerprint: input.fingerprint, context: context)
    }
}

/// `destroy-thread`: `{"threadId","accountId","commandId"?}`.
public struct DestroyThreadInput: Codable, Sendable, Hashable, IdempotentInput {
    public var threadId: ThreadID
    public var accountId: AccountID
    public var commandId: String?
}

public struct DestroyThreadHandler: RegistrableFunction {
    public static let name = "destroy-thread"
    public static let kind = FunctionKind.command

    private let execution: CommandExecution

    public init(dependencies: FunctionDependencies) {
        execution = CommandExecution(function: Self.name, dependencies: dependencies)
    }

    public func handle(_ input: DestroyThreadInput, context: FunctionContext) async throws(FunctionError) -> CommandAnswer {
        let idempotencyKey = try InputRules.idempotencyKey(header: context.idempotencyKey, commandId: input.commandId)
        return try await execution.run(
            .destroyThread, on: input.threadId, actor: input.accountId, idempotencyKey: idempotencyKey,
            fingerprint: input.fingerprint, context: context)
    }
}
