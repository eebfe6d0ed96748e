import Testing
import ThreadDomain

@Suite struct CreateThreadTests {
    func create(
        creatorId: AccountID = alice, parentThreadId: ThreadID? = nil, title: String = "Launch plan", remarks: String? = nil,
        administratorIds: [AccountID] = [], memberIds: [AccountID] = []
    ) -> ThreadCommand {
        .createThread(CreateThread(
            threadId: threadId, creatorId: creatorId, parentThreadId: parentThreadId, title: title, remarks: remarks,
            administratorIds: administratorIds, memberIds: memberIds
        ))
    }

    @Test func createsAThreadWithTheCreatorAsAdministrator() {
        expect(nil, create(parentThreadId: ulid(99), remarks: "Q3", memberIds: [carol]), actor: alice, events: [
            .threadCreated(ThreadCreated(
                threadId: threadId, creatorId: alice, parentThreadId: ulid(99), title: "Launch plan", remarks: "Q3",
                administratorIds: [alice], memberIds: [carol]
            )),
        ])
    }

    @Test func prependsAMissingCreatorAndFoldsDuplicatesKeepingOrder() {
        expect(nil, create(administratorIds: [bob, dave, bob], memberIds: [carol, erin, carol, erin]), actor: alice, events: [
            .threadCreated(ThreadCreated(
                threadId: threadId, creatorId: alice, title: "Launch plan",
                administratorIds: [alice, bob, dave], memberIds: [carol, erin]
            )),
        ])
    }

    @Test func keepsTheCreatorWhereTheListPutsThem() {
        expect(nil, create(administratorIds: [bob, alice, alice]), actor: alice, events: [
            .threadCreated(ThreadCreated(threadId: threadId, creatorId: alice, title: "Launch plan", administratorIds: [bob, alice], memberIds: [])),
        ])
    }

    @Test func trimsTitleAndRemarksAndDropsBlankRemarks() {
        expect(nil, create(title: "  \n Launch plan \t", remarks: "  Q3  "), actor: alice, events: [
            .threadCreated(ThreadCreated(threadId: threadId, creatorId: alice, title: "Launch plan", remarks: "Q3", administratorIds: [alice], memberIds: [])),
        ])
        expect(nil, create(remarks: " \n "), actor: alice, events: [
            .threadCreated(ThreadCreated(threadId: threadId, creatorId: alice, title: "Launch plan", administratorIds: [alice], memberIds: [])),
        ])
    }

    @Test func refusesAnExistingThread() {
        let error = expectError(given([threadCreated]), create(), actor: alice, code: .threadExists)
        #expect(error?.message.contains(threadId.rawValue) == true)
    }

    @Test func refusesAnExistingEvenIfDestroyedThread() {
        expectError(given([threadCreated, .threadDestroyed]), create(), actor: alice, code: .threadExists)
    }

    @Test(arguments: ["", "   ", "\n\t"])
    func refusesAnEmptyTitle(_ title: String) {
        let error = expectError(nil, create(title: title), actor: alice, code: .invalidRequest)
        #expect(error?.message.contains("title") == true)
    }

    @Test func titleLimitIs255CharactersAfterTrimming() {
        let longest = String(repeating: "t", count: 255)
        expect(nil, create(title: "  " + longest + "  "), actor: alice, events: [
            .threadCreated(ThreadCreated(threadId: threadId, creatorId: alice, title: longest, administratorIds: [alice], memberIds: [])),
        ])
        expectError(nil, create(title: longest + "t"), actor: alice, code: .invalidRequest)
    }

    @Test func titleLengthCountsCharacters() throws {
        let accented = String(repeating: "é", count: 255)  // 2 UTF-8 bytes each: 510 bytes
        let events = try ThreadDecider.decide(nil, create(title: accented), actor: alice)
        guard case .threadCreated(let created) = events.first else { Issue.record("no ThreadCreated"); return }
        #expect(created.title == accented)
        expectError(nil, create(title: accented + "é"), actor: alice, code: .invalidRequest)
    }

    /// One Character can carry any number of combining marks: "a" and 300,000
    /// accents is a single Character of 600,001 bytes.
    @Test func titleIsCappedAt1KiBOfUTF8() throws {
        let oneCharacter = "a" + String(repeating: "\u{0301}", count: 300_000)
        #expect(oneCharacter.count == 1)
        let error = expectError(nil, create(title: oneCharacter), actor: alice, code: .invalidRequest)
        #expect(error?.message == "title must be at most 1024 bytes of UTF-8 after trimming, got 600001")

        let exactly1KiB = "a" + String(repeating: "\u{0301}", count: 511) + "b"  // 1 + 1022 + 1 bytes, 2 Characters
        expect(nil, create(title: exactly1KiB), actor: alice, events: [
            .threadCreated(ThreadCreated(threadId: threadId, creatorId: alice, title: exactly1KiB, administratorIds: [alice], memberIds: [])),
        ])
        expectError(nil, create(title: exactly1KiB + "c"), actor: alice, code: .invalidRequest)
    }

    @Test func remarksAreCappedAt4KiBOfUTF8() {
        let exactly4KiB = String(repeating: "😀", count: 1024)  // 4 bytes each, 1024 Characters
        expect(nil, create(remarks: exactly4KiB), actor: alice, events: [
            .threadCreated(ThreadCreated(
                threadId: threadId, creatorId: alice, title: "Launch plan", remarks: exactly4KiB, administratorIds: [alice], memberIds: [])),
        ])
        let oneCharacter = "r" + String(repeating: "\u{0301}", count: 2048)  // 4097 bytes
        let error = expectError(nil, create(remarks: oneCharacter), actor: alice, code: .invalidRequest)
        #expect(error?.message == "remarks must be at most 4096 bytes of UTF-8 after trimming, got 4097")
    }

    @Test func remarksLimitIs1024Characters() {
        let longest = String(repeating: "r", count: 1024)
        expect(nil, create(remarks: longest), actor: alice, events: [
            .threadCreated(ThreadCreated(threadId: threadId, creatorId: alice, title: "Launch plan", remarks: longest, administratorIds: [alice], memberIds: [])),
        ])
        let error = expectError(nil, create(remarks: longest + "r"), actor: alice, code: .invalidRequest)
        #expect(error?.message.contains("remarks") == true)
    }

    @Test func accountListsHoldAtMost1000Ids() throws {
        let events = try ThreadDecider.decide(nil, create(administratorIds: accountIds(1000), memberIds: accountIds(1000)), actor: alice)
        guard case .threadCreated(let created) = events.first else { Issue.record("no ThreadCreated"); return }
        #expect(created.administratorIds.count == 1001)  // the creator comes on top of the 1000 asked for
        #expect(created.memberIds.count == 1000)
        expectError(nil, create(administratorIds: accountIds(1001)), actor: alice, code: .invalidRequest)
        let error = expectError(nil, create(memberIds: accountIds(1001)), actor: alice, code: .invalidRequest)
        #expect(error?.message.contains("memberIds") == true)
    }

    @Test func theCreatorMustBeTheActingAccount() {
        expectError(nil, create(creatorId: bob), actor: alice, code: .invalidRequest)
    }

    @Test func aThreadCannotBeItsOwnParent() {
        expectError(nil, create(parentThreadId: threadId), actor: alice, code: .invalidRequest)
    }
}

@Suite struct MissingAndDestroyedThreadTests {
    static let commandsOnAThread: [ThreadCommand] = [
        .destroyThread,
        .joinAdministrators([dave]), .leaveAdministrators([bob]),
        .joinMembers([dave]), .leaveMembers([carol]),
        .addMessages([NewMessage(id: message2, text: "hi")]),
        .removeMessages([message1]),
    ]

    @Test(arguments: commandsOnAThread)
    func aMissingThreadIsNotFound(_ command: ThreadCommand) {
        expectError(nil, command, actor: alice, code: .threadNotFound)
    }

    @Test(arguments: commandsOnAThread)
    func aDestroyedThreadRefusesEverything(_ command: ThreadCommand) {
        let state = given([threadCreated, .messagesAdded([AddedMessage(id: message1, senderId: alice, text: "hi")]), .threadDestroyed])
        expectError(state, command, actor: alice, code: .threadDestroyed)
    }
}

@Suite struct DestroyThreadTests {
    @Test func anAdministratorDestroysTheThread() {
        expect(given([threadCreated]), .destroyThread, actor: bob, events: [.threadDestroyed])
    }

    @Test(arguments: [carol, dave])
    func othersMayNot(_ actor: AccountID) {
        let error = expectError(given([threadCreated]), .destroyThread, actor: actor, code: .notAdministrator)
        #expect(error?.message.contains(actor.rawValue) == true)
    }
}
