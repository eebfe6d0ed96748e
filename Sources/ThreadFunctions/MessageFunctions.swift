import Foundation
public import ThreadDomain

/// One message of add-messages: `{"id"?,"text","replyTo"?,"mentions"?}`.
public struct NewMessageInput: Codable, Sendable, Hashable {
    public var id: MessageID?
    public var text: String
    public var replyTo: MessageID?
    public var mentions: [AccountID]?
}

/// `add-messages`: `{"threadId","accountId","messages":[…],"commandId"?}`.
public struct AddMessagesInput: Codable, Sendable, Hashable, IdempotentInput {
    public var threadId: ThreadID
    public var accountId: AccountID
    public var messages: [NewMessageInput]
    public var commandId: String?

    func validate() throws(FunctionError) {
        try InputRules.requireCount(messages.count, in: InputLimits.messages, field: "messages")
        var clientIds = Set<MessageID>()
        for (index, message) in messages.enumerated() {
            try InputRules.requireText(message.text, within: InputLimits.messageText, field: "messages[\(index)].text")
            try InputRules.requireAtMost(
                message.mentions?.count ?? 0, InputLimits.accountIds.upperBound, field: "messages[\(index)].mentions")
            if let id = message.id, !clientIds.insert(id).inserted {
                throw InputRules.invalid("messages[\(index)].id \(id) appears more than once")
            }
        }
    }
}

public struct AddMessagesHandler: RegistrableFunction {
    public static let name = "add-messages"
    public static let kind = FunctionKind.command

    private let execution: CommandExecution
    private let random = RandomReserve()

    public init(dependencies: FunctionDependencies) {
        execution = CommandExecution(function: Self.name, dependencies: dependencies)
    }

    public func handle(_ input: AddMessagesInput, context: FunctionContext) async throws(FunctionError) -> CommandAnswer {
        try input.validate()
        let idempotencyKey = try InputRules.idempotencyKey(header: context.idempotencyKey, commandId: input.commandId)
        var generated = orderedIds(count: input.messages.count(where: { $0.id == nil })).makeIterator()
        let messages = input.messages.map { message in
            NewMessage(
                id: message.id ?? generated.next()!, text: message.text, replyTo: message.replyTo,
                mentions: message.mentions ?? [])
        }
        let messageIds = messages.map(\.id)
        return try await execution.run(
            .addMessages(messages), on: input.threadId, actor: input.accountId, idempotencyKey: idempotencyKey,
            fingerprint: input.fingerprint, messageIds: messageIds, context: context)
    }

    /// Ids of one millisecond, sorted, so the messages of one command keep
    /// their order when ordered by id.
    private func orderedIds(count: Int) -> [MessageID] {
        let now = ULID.currentMilliseconds()
        var random = random
        return (0..<count).map { _ in ULID.generate(timestampMilliseconds: now, using: &random) }.sorted()
    }
}

/// `remove-messages`: `{"threadId","accountId","messageIds":[…],"commandId"?}`.
public struct RemoveMessagesInput: Codable, Sendable, Hashable, IdempotentInput {
    public var threadId: ThreadID
    public var accountId: AccountID
    public var messageIds: [MessageID]
    public var commandId: String?
}

public struct RemoveMessagesHandler: RegistrableFunction {
    public static let name = "remove-messages"
    public static let kind = FunctionKind.command

    private let execution: CommandExecution

    public init(dependencies: FunctionDependencies) {
        execution = CommandExecution(function: Self.name, dependencies: dependencies)
    }

    public func handle(_ input: RemoveMessagesInput, context: FunctionContext) async throws(FunctionError) -> CommandAnswer {
        try InputRules.requireCount(input.messageIds.count, in: InputLimits.messages, field: "messageIds")
        let idempotencyKey = try InputRules.idempotencyKey(header: context.idempotencyKey, commandId: input.commandId)
        var seen = Set<MessageID>()
        let messageIds = input.messageIds.filter { seen.insert($0).inserted }
        return try await execution.run(
            .removeMessages(messageIds), on: input.threadId, actor: input.accountId, idempotencyKey: idempotencyKey,
            fingerprint: input.fingerprint, messageIds: messageIds, context: context)
    }
}
