import Testing

@testable import RedisClient

private final class FakeConnection: PooledConnection {
    var isClosed = false
}

@Suite struct ConnectionPoolStateMachineTests {
    private typealias Machine = ConnectionPoolStateMachine<FakeConnection, String>

    /// Leases a slot that must be opened and reports it connected.
    private func open(_ machine: inout Machine) -> (FakeConnection, Int)? {
        guard case .connect(let slot) = machine.lease() else { return nil }
        let connection = FakeConnection()
        guard case .use(let waiters) = machine.connected(connection, slot: slot), waiters.isEmpty else { return nil }
        return (connection, slot)
    }

    @Test func idleConnectionIsReusedInsteadOfOpeningAnother() throws {
        var machine = Machine(maximumConnections: 4)
        let (connection, slot) = try #require(open(&machine))
        machine.release(connection, slot: slot)
        guard case .use(let reused, let reusedSlot) = machine.lease() else {
            Issue.record("expected the idle connection")
            return
        }
        #expect(reused === connection && reusedSlot == slot)
        #expect(machine.openConnectionCount == 1)
    }

    @Test func busyConnectionsGrowThePoolUpToTheMaximumThenShareTheLeastLoaded() throws {
        var machine = Machine(maximumConnections: 2)
        let (first, firstSlot) = try #require(open(&machine))
        let (second, secondSlot) = try #require(open(&machine))
        #expect(firstSlot != secondSlot)
        // Full: the third command shares; both have load 1, so the lower slot wins, then the other.
        guard case .use(let third, _) = machine.lease(), case .use(let fourth, _) = machine.lease() else {
            Issue.record("a full pool must share connections")
            return
        }
        #expect(third === first && fourth === second)
        machine.release(second, slot: secondSlot)
        machine.release(second, slot: secondSlot)
        guard case .use(let leastLoaded, _) = machine.lease() else { return #expect(Bool(false)) }
        #expect(leastLoaded === second)
    }

    @Test func aCallerOnAnEventLoopPrefersThatLoopsConnections() throws {
        var machine = Machine(maximumConnections: 3)
        let (remote, remoteSlot) = try #require(open(&machine))
        let (local, localSlot) = try #require(open(&machine))
        machine.release(remote, slot: remoteSlot)
        machine.release(local, slot: localSlot)
        let isLocal: (FakeConnection) -> Bool = { $0 === local }
        // Both idle: the local one, though the other has the lower slot.
        guard case .use(let first, _) = machine.lease(isLocal: isLocal) else { return #expect(Bool(false)) }
        #expect(first === local)
        // A caller on a loop with no connection there opens one rather than hop to an idle one.
        guard case .connect(let otherLoopsSlot) = machine.lease(isLocal: { _ in false }) else { return #expect(Bool(false)) }
        _ = machine.connectFailed(slot: otherLoopsSlot)
        // The local one busy and room left: open another (on the caller's loop) rather than hop to the idle one.
        guard case .connect(let newSlot) = machine.lease(isLocal: isLocal) else { return #expect(Bool(false)) }
        let opened = FakeConnection()
        guard case .use = machine.connected(opened, slot: newSlot) else { return #expect(Bool(false)) }
        // Full: the busy local connection still beats the idle remote one (commands pipeline).
        guard case .use(let shared, _) = machine.lease(isLocal: isLocal) else { return #expect(Bool(false)) }
        #expect(shared === local)
        // Off any loop: the least-loaded, as before.
        guard case .use(let plain, _) = machine.lease() else { return #expect(Bool(false)) }
        #expect(plain === remote)
    }

    @Test func whileEverySlotConnectsCommandsWaitAndShareTheNewConnection() {
        var machine = Machine(maximumConnections: 1)
        guard case .connect(let slot) = machine.lease(), case .wait(let waitSlot) = machine.lease() else {
            Issue.record("expected connect then wait")
            return
        }
        #expect(waitSlot == slot)
        guard case .waiting = machine.addWaiter("w1", slot: slot) else { return #expect(Bool(false)) }
        let connection = FakeConnection()
        guard case .use(let waiters) = machine.connected(connection, slot: slot) else { return #expect(Bool(false)) }
        #expect(waiters == ["w1"])
        // Opener and waiter both hold it: a third lease in a full pool still shares it.
        guard case .use(let shared, _) = machine.lease() else { return #expect(Bool(false)) }
        #expect(shared === connection)
    }

    @Test func failedConnectFreesTheSlotAndHandsBackItsWaiters() {
        var machine = Machine(maximumConnections: 1)
        guard case .connect(let slot) = machine.lease() else { return #expect(Bool(false)) }
        _ = machine.addWaiter("w1", slot: slot)
        let failedWaiters = machine.connectFailed(slot: slot)
        #expect(failedWaiters == ["w1"])
        guard case .retry = machine.addWaiter("late", slot: slot) else {
            Issue.record("a waiter for a failed slot must lease again")
            return
        }
        guard case .connect = machine.lease() else {
            Issue.record("the next command must try to connect again")
            return
        }
    }

    @Test func closedConnectionIsDroppedAndTheNextLeaseReconnects() throws {
        var machine = Machine(maximumConnections: 1)
        let (connection, slot) = try #require(open(&machine))
        machine.release(connection, slot: slot)
        connection.isClosed = true
        #expect(machine.openConnectionCount == 0)
        guard case .connect = machine.lease() else {
            Issue.record("expected a reconnect")
            return
        }
    }

    @Test func shutdownClosesEverythingFailsWaitersAndRefusesLeases() throws {
        var machine = Machine(maximumConnections: 2)
        let (ready, _) = try #require(open(&machine))
        guard case .connect(let connectingSlot) = machine.lease() else { return #expect(Bool(false)) }
        guard case .use = machine.lease() else { return #expect(Bool(false)) }  // full: shares `ready`
        _ = machine.addWaiter("w1", slot: connectingSlot)
        let dedicated = FakeConnection()
        let tracked = machine.addDedicated(dedicated)
        #expect(tracked)

        let (close, failWaiters) = machine.shutDown()
        #expect(close.count == 2 && close.contains { $0 === ready } && close.contains { $0 === dedicated })
        #expect(failWaiters == ["w1"])
        guard case .fail(let error) = machine.lease() else { return #expect(Bool(false)) }
        #expect(error.code == .shutdown)
        let trackedAfterShutdown = machine.addDedicated(FakeConnection())
        #expect(!trackedAfterShutdown)
        guard case .closeConnection(let lateWaiters) = machine.connected(FakeConnection(), slot: connectingSlot) else {
            Issue.record("a connection finished after shutdown must be closed")
            return
        }
        #expect(lateWaiters.isEmpty)
        let secondShutdown = machine.shutDown()
        #expect(secondShutdown.close.isEmpty)
    }
}
