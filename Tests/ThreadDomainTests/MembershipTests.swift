import Testing
import ThreadDomain

@Suite struct JoinAdministratorsTests {
    let state = given([threadCreated])

    @Test func addsOnlyNewIdsOnceInRequestOrder() {
        expect(state, .joinAdministrators([erin, bob, dave, erin, alice]), actor: alice, events: [.administratorIdsJoined([erin, dave])])
    }

    @Test func aMemberMayAlsoBecomeAnAdministrator() {
        expect(state, .joinAdministrators([carol]), actor: bob, events: [.administratorIdsJoined([carol])])
    }

    @Test func nothingNewWritesNoEvent() {
        expect(state, .joinAdministrators([alice, bob, bob]), actor: alice, events: [])
    }

    @Test(arguments: [carol, dave])
    func onlyAdministratorsMayAdd(_ actor: AccountID) {
        expectError(state, .joinAdministrators([erin]), actor: actor, code: .notAdministrator)
    }

    @Test func aNonAdministratorCannotPromoteThemselves() {
        expectError(state, .joinAdministrators([carol]), actor: carol, code: .notAdministrator)
    }

    @Test func theListHolds1To1000Ids() {
        expectError(state, .joinAdministrators([]), actor: alice, code: .invalidRequest)
        expect(state, .joinAdministrators(accountIds(1000)), actor: alice, events: [.administratorIdsJoined(accountIds(1000))])
        expectError(state, .joinAdministrators(accountIds(1001)), actor: alice, code: .invalidRequest)
    }
}

@Suite struct LeaveAdministratorsTests {
    let state = given([threadCreated])

    @Test func anAdministratorRemovesAnother() {
        expect(state, .leaveAdministrators([bob]), actor: alice, events: [.administratorIdsLeft([bob])])
    }

    @Test func anAdministratorLeavesThemselvesWithDuplicatesFolded() {
        expect(state, .leaveAdministrators([bob, bob]), actor: bob, events: [.administratorIdsLeft([bob])])
    }

    @Test func idsNotPresentAreIgnored() {
        expect(state, .leaveAdministrators([dave, bob, carol]), actor: alice, events: [.administratorIdsLeft([bob])])
    }

    @Test func nothingRemovedWritesNoEvent() {
        expect(state, .leaveAdministrators([dave, carol]), actor: alice, events: [])
    }

    @Test func aNonAdministratorLeavingThemselvesChangesNothing() {
        expect(state, .leaveAdministrators([carol]), actor: carol, events: [])
    }

    @Test func aNonAdministratorCannotRemoveSomeoneElse() {
        expectError(state, .leaveAdministrators([bob]), actor: carol, code: .notAdministrator)
        expectError(state, .leaveAdministrators([carol, bob]), actor: carol, code: .notAdministrator)
    }

    @Test func theLastAdministratorCannotLeave() {
        let alone = given([threadCreated, .administratorIdsLeft([bob])])
        let error = expectError(alone, .leaveAdministrators([alice]), actor: alice, code: .lastAdministrator)
        #expect(error?.message.contains(threadId.rawValue) == true)
    }

    @Test func removingEveryAdministratorAtOnceIsRefused() {
        expectError(state, .leaveAdministrators([alice, bob, dave]), actor: alice, code: .lastAdministrator)
    }

    @Test func theListHolds1To1000Ids() {
        expectError(state, .leaveAdministrators([]), actor: alice, code: .invalidRequest)
        expectError(state, .leaveAdministrators([bob] + accountIds(1000)), actor: alice, code: .invalidRequest)
        expect(state, .leaveAdministrators([bob] + accountIds(999)), actor: alice, events: [.administratorIdsLeft([bob])])
    }
}

@Suite struct JoinMembersTests {
    let state = given([threadCreated])

    @Test func addsOnlyNewIdsOnceInRequestOrder() {
        expect(state, .joinMembers([erin, carol, dave, erin]), actor: bob, events: [.memberIdsJoined([erin, dave])])
    }

    @Test func anAdministratorMayAlsoBeAMember() {
        expect(state, .joinMembers([alice]), actor: alice, events: [.memberIdsJoined([alice])])
    }

    @Test func nothingNewWritesNoEvent() {
        expect(state, .joinMembers([carol, carol]), actor: alice, events: [])
    }

    @Test(arguments: [carol, dave])
    func onlyAdministratorsMayAdd(_ actor: AccountID) {
        expectError(state, .joinMembers([erin]), actor: actor, code: .notAdministrator)
    }

    @Test func theListHolds1To1000Ids() {
        expectError(state, .joinMembers([]), actor: alice, code: .invalidRequest)
        expect(state, .joinMembers(accountIds(1000)), actor: alice, events: [.memberIdsJoined(accountIds(1000))])
        expectError(state, .joinMembers(accountIds(1001)), actor: alice, code: .invalidRequest)
    }
}

@Suite struct LeaveMembersTests {
    let state = given([threadCreated, .memberIdsJoined([dave])])

    @Test func anAdministratorRemovesMembers() {
        expect(state, .leaveMembers([carol, erin, dave, carol]), actor: alice, events: [.memberIdsLeft([carol, dave])])
    }

    @Test func aMemberLeavesThemselves() {
        expect(state, .leaveMembers([carol]), actor: carol, events: [.memberIdsLeft([carol])])
        expect(state, .leaveMembers([carol, carol]), actor: carol, events: [.memberIdsLeft([carol])])
    }

    @Test func aMemberCannotRemoveAnotherMember() {
        expectError(state, .leaveMembers([dave]), actor: carol, code: .notAdministrator)
        expectError(state, .leaveMembers([carol, dave]), actor: carol, code: .notAdministrator)
    }

    @Test func anOutsiderLeavingThemselvesChangesNothing() {
        expect(state, .leaveMembers([erin]), actor: erin, events: [])
    }

    @Test func removingNonMembersWritesNoEvent() {
        expect(state, .leaveMembers([bob, erin]), actor: alice, events: [])
    }

    @Test func theListHolds1To1000Ids() {
        expectError(state, .leaveMembers([]), actor: alice, code: .invalidRequest)
        expectError(state, .leaveMembers(accountIds(1001)), actor: alice, code: .invalidRequest)
    }

    @Test func leavingMembersKeepsAdministratorsAndTheReverse() throws {
        let both = given([threadCreated, .memberIdsJoined([bob]), .memberIdsLeft([bob])])
        #expect(both?.isAdministrator(bob) == true)
        #expect(both?.isMember(bob) == false)
        let demoted = given([threadCreated, .administratorIdsJoined([carol]), .administratorIdsLeft([carol])])
        #expect(demoted?.isMember(carol) == true)
        #expect(demoted?.isAdministrator(carol) == false)
    }
}
