/// A Redis call as a value, after valkey-swift's `ValkeyCommand`: the command
/// it sends (which knows its keys, so a cluster client can route it by slot)
/// and its reply decoded to a type. Replies of another shape are refused as
/// `.protocolError`, never read by position at the call site.
public protocol RedisCall: Sendable {
    associatedtype Reply: Sendable
    var command: RedisCommand { get }
    func decode(_ reply: RedisValue) throws(RedisError) -> Reply
}

extension RedisCall {
    /// The error for a reply this request cannot read.
    public func unexpected(_ reply: RedisValue) -> RedisError {
        RedisError(code: .protocolError, message: "unexpected reply to \(command.name) \(command.argumentCount > 1 ? String(decoding: command.argument(at: 1), as: UTF8.self) : "")")
    }
}

extension RedisCommandExecutor {
    /// Sends the request's command and decodes its reply.
    public func execute<Call: RedisCall>(_ call: Call) async throws(RedisError) -> Call.Reply {
        try call.decode(try await send(call.command))
    }
}
