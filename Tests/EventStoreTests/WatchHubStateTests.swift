@testable import EventStore
import Testing

/// The watch hub's bookkeeping without Redis: which streams a lane reads and
/// from where, who gets which entries, heartbeats, and ending feeds.
struct WatchHubStateTests {
    typealias State = WatchHubState<String>
    let start = ContinuousClock.now

    private func subscribe(_ state: inout State, _ sink: String, key: String = "t1", lane: Int = 0, after: Int64) -> (id: Int, wake: Bool) {
        guard case .subscribed(let id, let wake) = state.subscribe(key: key, lane: lane, after: after, sink: sink, now: start) else {
            Issue.record("refused while running")
            return (-1, false)
        }
        return (id, wake)
    }

    private func entries(_ versions: ClosedRange<Int64>) -> [(version: Int64, entry: Int64)] {
        versions.map { ($0, $0) }
    }

    @Test func aNewStreamWakesItsLaneAndASecondWatcherFromTheSamePlaceDoesNot() {
        var state = State()
        #expect(subscribe(&state, "a", after: 5).wake)
        #expect(!subscribe(&state, "b", after: 5).wake)
        #expect(!subscribe(&state, "c", after: 7).wake, "reading from 5 covers a watcher at 7")
        #expect(subscribe(&state, "d", key: "t2", after: 1).wake)
        #expect(subscribe(&state, "e", key: "t3", lane: 1, after: 0).wake)
        #expect(state.reads(lane: 0) == [.init(key: "t1", after: 5), .init(key: "t2", after: 1)])
        #expect(state.reads(lane: 1) == [.init(key: "t3", after: 0)])
    }

    @Test func entriesFanOutToEveryWatcherOfTheStreamPastItsOwnCursor() {
        var state = State()
        _ = subscribe(&state, "a", after: 5)
        _ = subscribe(&state, "b", after: 7)
        _ = subscribe(&state, "other", key: "t2", after: 5)
        let read = State.Read(key: "t1", after: 5)
        let deliveries = state.received(entries(6...8), for: read, lane: 0, now: start)
        let bySink = Dictionary(uniqueKeysWithValues: deliveries.map { ($0.sink, $0.entries) })
        #expect(bySink == ["a": [6, 7, 8], "b": [8]])
        #expect(state.reads(lane: 0) == [.init(key: "t1", after: 8), .init(key: "t2", after: 5)])
    }

    @Test func aResumingWatcherLowersTheCursorAndAReadIssuedBeforeThatSkipsIt() {
        var state = State()
        _ = subscribe(&state, "a", after: 5)
        let inFlight = state.reads(lane: 0)[0]
        // A client resumes from 2 while the lane's read from 5 is blocked: the lane must read again from 2.
        #expect(subscribe(&state, "late", after: 2).wake)
        let first = state.received(entries(6...6), for: inFlight, lane: 0, now: start)
        #expect(first.map(\.sink) == ["a"], "6 would leave a gap (3 to 5) for the resuming watcher")
        #expect(state.reads(lane: 0) == [.init(key: "t1", after: 2)], "the lowered cursor stays")
        let again = state.received(entries(3...6), for: .init(key: "t1", after: 2), lane: 0, now: start)
        let bySink = Dictionary(uniqueKeysWithValues: again.map { ($0.sink, $0.entries) })
        #expect(bySink == ["late": [3, 4, 5, 6]], "the first watcher had 6 already")
        #expect(state.reads(lane: 0) == [.init(key: "t1", after: 6)])
    }

    @Test func heartbeatsGoToWatchersThatGotNothingForAnInterval() {
        var state = State()
        _ = subscribe(&state, "busy", after: 1)
        _ = subscribe(&state, "quiet", key: "t2", after: 1)
        _ = state.received(entries(2...2), for: .init(key: "t1", after: 1), lane: 0, now: start + .seconds(10))
        #expect(state.heartbeatsDue(lane: 0, now: start + .seconds(5), interval: .seconds(15)).isEmpty)
        #expect(state.heartbeatsDue(lane: 0, now: start + .seconds(16), interval: .seconds(15)) == ["quiet"])
        #expect(state.heartbeatsDue(lane: 0, now: start + .seconds(20), interval: .seconds(15)).isEmpty, "a heartbeat resets the interval")
        #expect(state.heartbeatsDue(lane: 0, now: start + .seconds(26), interval: .seconds(15)) == ["busy"])
    }

    @Test func unsubscribingTheLastWatcherDropsTheStreamFromTheRead() {
        var state = State()
        let a = subscribe(&state, "a", after: 1)
        let b = subscribe(&state, "b", after: 1)
        #expect(state.unsubscribe(a.id) == "a")
        #expect(state.unsubscribe(a.id) == nil, "again is harmless")
        #expect(state.reads(lane: 0).map(\.key) == ["t1"])
        #expect(state.unsubscribe(b.id) == "b")
        #expect(state.reads(lane: 0).isEmpty)
        #expect(state.subscriberCount == 0)
        #expect(state.received(entries(2...2), for: .init(key: "t1", after: 1), lane: 0, now: start).isEmpty)
    }

    @Test func aFailedLaneEndsOnlyItsOwnWatchersAndShutdownEndsAllAndRefusesMore() {
        var state = State()
        _ = subscribe(&state, "a", lane: 0, after: 1)
        _ = subscribe(&state, "b", key: "t2", lane: 1, after: 1)
        _ = subscribe(&state, "c", key: "t3", lane: 1, after: 1)
        #expect(state.laneFailed(0) == ["a"])
        #expect(state.reads(lane: 0).isEmpty)
        #expect(state.endStream("t3", lane: 1) == ["c"])
        #expect(state.shutDown() == ["b"])
        #expect(state.isShutDown)
        guard case .shutDown = state.subscribe(key: "t1", lane: 0, after: 0, sink: "late", now: start) else {
            Issue.record("subscribed after shutdown")
            return
        }
    }
}
