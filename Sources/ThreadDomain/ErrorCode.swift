/// Every code an error answer can carry, in one enum: the domain raises the
/// rule codes of DESIGN §1, the command pipeline and the stores the service
/// codes, the HTTP edge its own. The edge maps each to its status in one
/// `switch` with no `default`, so a new code does not compile until it has one.
public enum ErrorCode: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    // The domain's rules.
    /// 400: malformed input, limits exceeded, unknown mentions, unreadable event data.
    case invalidRequest = "invalid_request"
    /// 409: create-thread on a stream that already exists.
    case threadExists = "thread_exists"
    /// 404
    case threadNotFound = "thread_not_found"
    /// 410
    case threadDestroyed = "thread_destroyed"
    /// 403
    case notAdministrator = "not_administrator"
    /// 403
    case notParticipant = "not_participant"
    /// 409: the command would leave the thread without administrators.
    case lastAdministrator = "last_administrator"
    /// 404: a reply target or removal names no live message of this thread.
    case messageNotFound = "message_not_found"
    /// 409: a client-supplied message id is already used in this thread.
    case messageExists = "message_exists"
    /// 403: removing someone else's message without being an administrator.
    case notSender = "not_sender"

    // The service.
    /// 409: the thread kept moving while the command retried (bounded).
    case conflict
    /// 409: an idempotency key seen before with a different request.
    case idempotencyKeyReused = "idempotency_key_reused"
    /// 503: Redis unreachable or in a transient state, or a bounded resource is full; nothing written.
    case unavailable
    /// 504: a bounded wait ran out (a query's `minVersion`).
    case timeout
    /// 429: the process's or the account's limit of open watch streams.
    case tooManyStreams = "too_many_streams"
    /// 500: anything else; the client gets a fixed sentence.
    case internalError = "internal_error"

    // The HTTP edge.
    /// 401: a missing, malformed, expired or wrongly signed bearer token.
    case unauthenticated
    /// 403: `accountId` in the request names another account than the token's `sub`.
    case accountMismatch = "account_mismatch"
    /// 404: no route or function by that name.
    case notFound = "not_found"
    /// 405: the path exists, with another method.
    case methodNotAllowed = "method_not_allowed"
    /// 413: the body exceeds the configured maximum.
    case payloadTooLarge = "payload_too_large"
    /// 415: a command body that is not `application/json`.
    case unsupportedMediaType = "unsupported_media_type"

    public var description: String { rawValue }
}
