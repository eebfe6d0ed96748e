/// What the pool needs to know about a connection.
protocol PooledConnection: AnyObject {
    var isClosed: Bool { get }
}

extension RedisConnection: PooledConnection {}

/// Which connection a command goes to, without I/O: the pool performs the
/// actions it returns while holding no lock.
///
/// Connections are opened lazily, one per slot, up to `maximumConnections`.
/// A command takes the least-loaded ready connection when it is idle or the
/// pool is full, otherwise it opens a new one; while every slot is still
/// connecting, it waits for one of them. A caller running on an event loop
/// prefers that loop's connections (`isLocal`): its write and the reply's
/// resumption then stay on one thread, with no wake-up of another, and a
/// connection it opens is on that loop too.
struct ConnectionPoolStateMachine<Connection: PooledConnection, Waiter> {
    private enum Slot {
        case connecting(waiters: [Waiter])
        case ready(Connection, load: Int)
    }

    let maximumConnections: Int
    private var slots: [Int: Slot] = [:]
    private var nextSlotID = 0
    private var dedicated: [ObjectIdentifier: Connection] = [:]
    private(set) var isShutDown = false

    init(maximumConnections: Int) {
        self.maximumConnections = max(1, maximumConnections)
    }

    var openConnectionCount: Int {
        slots.values.filter { if case .ready(let connection, _) = $0 { !connection.isClosed } else { false } }.count
    }

    enum LeaseAction {
        case use(Connection, slot: Int)
        /// The caller opens the connection for this slot and reports `connected` or `connectFailed`.
        case connect(slot: Int)
        /// The caller registers with `addWaiter` and waits.
        case wait(slot: Int)
        case fail(RedisError)
    }

    /// `isLocal`: for a caller on an event loop, whether a connection is on that loop; nil off any loop.
    mutating func lease(isLocal: ((Connection) -> Bool)? = nil) -> LeaseAction {
        guard !isShutDown else { return .fail(Self.shutDownError) }
        // A dropped connection leaves its slot here; the next lease reconnects. One pass,
        // allocating nothing unless a slot goes: every command of the process leases.
        typealias Candidate = (id: Int, connection: Connection, load: Int)
        var leastLoaded: Candidate?
        var leastLoadedLocal: Candidate?
        var dropped: [Int] = []
        for (id, slot) in slots {
            guard case .ready(let connection, let load) = slot else { continue }
            if connection.isClosed {
                dropped.append(id)
                continue
            }
            let candidate = (id: id, connection: connection, load: load)
            func beats(_ current: Candidate?) -> Bool { current.map { (load, id) < ($0.load, $0.id) } ?? true }
            if beats(leastLoaded) { leastLoaded = candidate }
            if isLocal?(connection) == true, beats(leastLoadedLocal) { leastLoadedLocal = candidate }
        }
        for id in dropped { slots[id] = nil }
        let hasRoom = slots.count < maximumConnections

        // On a loop: its idle connection, else a new one there while there is room, else its
        // least-loaded one, busy as it is, rather than a hop to another loop's (commands pipeline).
        if let local = leastLoadedLocal, local.load == 0 || !hasRoom {
            slots[local.id] = .ready(local.connection, load: local.load + 1)
            return .use(local.connection, slot: local.id)
        }
        // Off any loop, as before, an idle connection; in a full pool, the least-loaded of all.
        if let leastLoaded, !hasRoom || (isLocal == nil && leastLoaded.load == 0) {
            slots[leastLoaded.id] = .ready(leastLoaded.connection, load: leastLoaded.load + 1)
            return .use(leastLoaded.connection, slot: leastLoaded.id)
        }
        if hasRoom {
            let id = nextSlotID
            nextSlotID += 1
            slots[id] = .connecting(waiters: [])
            return .connect(slot: id)
        }
        // Full, and nothing ready yet: join the connecting slot with the fewest waiters.
        let slot = slots.compactMap { id, slot -> (id: Int, waiters: Int)? in
            if case .connecting(let waiters) = slot { (id, waiters.count) } else { nil }
        }.min { ($0.waiters, $0.id) < ($1.waiters, $1.id) }!
        return .wait(slot: slot.id)
    }

    enum WaitAction {
        case waiting
        case use(Connection, slot: Int)
        /// The slot failed or was dropped in the meantime: lease again.
        case retry
        case fail(RedisError)
    }

    mutating func addWaiter(_ waiter: Waiter, slot id: Int) -> WaitAction {
        guard !isShutDown else { return .fail(Self.shutDownError) }
        switch slots[id] {
        case .connecting(var waiters):
            waiters.append(waiter)
            slots[id] = .connecting(waiters: waiters)
            return .waiting
        case .ready(let connection, let load) where !connection.isClosed:
            slots[id] = .ready(connection, load: load + 1)
            return .use(connection, slot: id)
        case .ready, nil:
            return .retry
        }
    }

    enum ConnectedAction {
        /// The caller and every returned waiter use the new connection.
        case use(waiters: [Waiter])
        /// The pool shut down meanwhile: close the connection, fail the waiters with `.shutdown`.
        case closeConnection(failWaiters: [Waiter])
    }

    mutating func connected(_ connection: Connection, slot id: Int) -> ConnectedAction {
        guard case .connecting(let waiters) = slots[id] else {
            preconditionFailure("connected(slot:) for slot \(id) that is not connecting")
        }
        if isShutDown {
            slots[id] = nil
            return .closeConnection(failWaiters: waiters)
        }
        slots[id] = .ready(connection, load: 1 + waiters.count)
        return .use(waiters: waiters)
    }

    /// Frees the slot; the returned waiters fail with the connect error.
    mutating func connectFailed(slot id: Int) -> [Waiter] {
        guard case .connecting(let waiters) = slots.removeValue(forKey: id) else { return [] }
        return waiters
    }

    /// A command on the connection has finished.
    mutating func release(_ connection: Connection, slot id: Int) {
        guard case .ready(let current, let load) = slots[id], current === connection else { return }
        slots[id] = .ready(current, load: load - 1)
    }

    /// Tracks a dedicated connection so shutdown closes it; false once shut down.
    mutating func addDedicated(_ connection: Connection) -> Bool {
        guard !isShutDown else { return false }
        dedicated[ObjectIdentifier(connection)] = connection
        return true
    }

    mutating func removeDedicated(_ connection: Connection) {
        dedicated[ObjectIdentifier(connection)] = nil
    }

    /// Stops leasing. Returns the connections to close and the waiters to fail;
    /// slots still connecting are closed when they report `connected`.
    mutating func shutDown() -> (close: [Connection], failWaiters: [Waiter]) {
        guard !isShutDown else { return ([], []) }
        isShutDown = true
        var connections = Array(dedicated.values)
        var waiters: [Waiter] = []
        for (id, slot) in slots {
            switch slot {
            case .ready(let connection, _):
                connections.append(connection)
                slots[id] = nil
            case .connecting(let slotWaiters):
                waiters += slotWaiters
                slots[id] = .connecting(waiters: [])
            }
        }
        dedicated = [:]
        return (connections, waiters)
    }

    static var shutDownError: RedisError {
        RedisError(code: .shutdown, message: "the Redis connection pool has been shut down")
    }
}
