public import ThreadDomain

/// join/leave administrators and members: `{"threadId","accountId","accountIds":[…],"commandId"?}`.
public struct AccountIdsInput: Codable, Sendable, Hashable, IdempotentInput {
    public var threadId: ThreadID
    /// The acting account.
    public var accountId: AccountID
    /// The accounts joining or leaving.
    public var accountIds: [AccountID]
    public var commandId: String?
}

/// The four participant commands differ only in name and command case.
private struct ParticipantCommand: Sendable {
    let execution: CommandExecution
    let makeCommand: @Sendable ([AccountID]) -> ThreadCommand

    func run(_ input: AccountIdsInput, context: FunctionContext) async throws(FunctionError) -> CommandAnswer {
        try InputRules.requireCount(input.accountIds.count, in: InputLimits.accountIds, field: "accountIds")
        let idempotencyKey = try InputRules.idempotencyKey(header: context.idempotencyKey, commandId: input.commandId)
        return try await execution.run(
            makeCommand(input.accountIds), on: input.threadId, actor: input.accountId, idempotencyKey: idempotencyKey,
            fingerprint: input.fingerprint, context: context)
    }
}

public struct JoinAdministratorsHandler: RegistrableFunction {
    public static let name = "join-administrators"
    public static let kind = FunctionKind.command
    private let command: ParticipantCommand

    public init(dependencies: FunctionDependencies) {
        command = ParticipantCommand(
            execution: CommandExecution(function: Self.name, dependencies: dependencies),
            makeCommand: ThreadCommand.joinAdministrators)
    }

    public func handle(_ input: AccountIdsInput, context: FunctionContext) async throws(FunctionError) -> CommandAnswer {
        try await command.run(input, context: context)
    }
}

public struct LeaveAdministratorsHandler: RegistrableFunction {
    public static let name = "leave-administrators"
    public static let kind = FunctionKind.command
    private let command: ParticipantCommand

    public init(dependencies: FunctionDependencies) {
        command = ParticipantCommand(
            execution: CommandExecution(function: Self.name, dependencies: dependencies),
            makeCommand: ThreadCommand.leaveAdministrators)
    }

    public func handle(_ input: AccountIdsInput, context: FunctionContext) async throws(FunctionError) -> CommandAnswer {
        try await command.run(input, context: context)
    }
}

public struct JoinMembersHandler: RegistrableFunction {
    public static let name = "join-members"
    public static let kind = FunctionKind.command
    private let command: ParticipantCommand

    public init(dependencies: FunctionDependencies) {
        command = ParticipantCommand(
            execution: CommandExecution(function: Self.name, dependencies: dependencies),
            makeCommand: ThreadCommand.joinMembers)
    }

    public func handle(_ input: AccountIdsInput, context: FunctionContext) async throws(FunctionError) -> CommandAnswer {
        try await command.run(input, context: context)
    }
}

public struct LeaveMembersHandler: RegistrableFunction {
    public static let name = "leave-members"
    public static let kind = FunctionKind.command
    private let command: ParticipantCommand

    public init(dependencies: FunctionDependencies) {
        command = ParticipantCommand(
            execution: CommandExecution(function: Self.name, dependencies: dependencies),
            makeCommand: ThreadCommand.leaveMembers)
    }

    public func handle(_ input: AccountIdsInput, context: FunctionContext) async throws(FunctionError) -> CommandAnswer {
        try await command.run(input, context: context)
    }
}
