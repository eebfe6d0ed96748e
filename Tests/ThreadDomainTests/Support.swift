import Testing
import ThreadDomain

/// A ULID whose text is `n` in decimal, left-padded with zeros: readable and stable.
func ulid(_ number: Int) -> ULID {
    let digits = String(number)
    return ULID(String(repeating: "0", count: 26 - digits.count) + digits)!
}

let threadId = ulid(100)
let alice = ulid(1)   // creator, administrator
let bob = ulid(2)     // administrator
let carol = ulid(3)   // member
let dave = ulid(4)    // outsider
let erin = ulid(5)    // outsider

let message1 = ulid(1001)
let message2 = ulid(1002)
let message3 = ulid(1003)

/// The usual opening: alice created the thread with bob as a second administrator and carol as a member.
let threadCreated = ThreadEvent.threadCreated(ThreadCreated(
    threadId: threadId, creatorId: alice, title: "Launch plan",
    administratorIds: [alice, bob], memberIds: [carol]
))

/// The state after `events`, recorded as versions 1…n at 1_000, 1_001, …
func given(_ events: [ThreadEvent]) -> ThreadState? {
    ThreadDecider.replay(events.enumerated().map { index, event in
        RecordedEvent(version: Int64(index + 1), at: 1_000 + Int64(index), actor: alice, commandId: "cmd-\(index + 1)", event: event)
    })
}

func expect(
    _ state: ThreadState?, _ command: ThreadCommand, actor: AccountID, events expected: [ThreadEvent],
    sourceLocation: SourceLocation = #_sourceLocation
) {
    do {
        let events = try ThreadDecider.decide(state, command, actor: actor)
        #expect(events == expected, sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(expected), got \(error)", sourceLocation: sourceLocation)
    }
}

/// Asserts the refusal's code and returns the error so a test can check its message.
@discardableResult
func expectError(
    _ state: ThreadState?, _ command: ThreadCommand, actor: AccountID, code: DomainError.Code,
    sourceLocation: SourceLocation = #_sourceLocation
) -> DomainError? {
    do {
        let events = try ThreadDecider.decide(state, command, actor: actor)
        Issue.record("expected \(code), got \(events)", sourceLocation: sourceLocation)
        return nil
    } catch {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    }
}

func accountIds(_ count: Int, from first: Int = 10_000) -> [AccountID] {
    (first..<first + count).map(ulid)
}
