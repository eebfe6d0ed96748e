/// Who may read a thread or watch it, in DESIGN's order: the thread exists
/// (404 `thread_not_found`), is not destroyed (410 `thread_destroyed`), and
/// the account takes part (403 `not_participant`). Queries check it on the
/// read model, watch on the write side; the rule is this one.
public enum ReadAccess {
    public static func refusal(
        of threadId: ThreadID, for accountId: AccountID, exists: Bool, isDestroyed: Bool, isParticipant: Bool
    ) -> DomainError? {
        guard exists else { return DomainError(.threadNotFound, "thread \(threadId) does not exist") }
        guard !isDestroyed else { return DomainError(.threadDestroyed, "thread \(threadId) was destroyed") }
        guard isParticipant else { return DomainError(.notParticipant, "account \(accountId) does not take part in thread \(threadId)") }
        return nil
    }

    /// The rule on the write side's state (nil: no such thread).
    public static func refusal(of state: ThreadState?, _ threadId: ThreadID, for accountId: AccountID) -> DomainError? {
        refusal(
            of: threadId, for: accountId, exists: state != nil, isDestroyed: state?.isDestroyed ?? false,
            isParticipant: state?.isParticipant(accountId) ?? false)
    }
}
