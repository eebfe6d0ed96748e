import NIOCore
import NIOPosix
import RedisClient
import Testing

@Suite struct EventLoopTaskExecutorTests {
    /// The worker's loop and its child tasks resume on the loop its connection lives on.
    @Test func aTaskAndItsChildrenRunOnTheEventLoop() async throws {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let onLoop = await withTaskExecutorPreference(EventLoopTaskExecutor(eventLoop)) {
            var seen = [eventLoop.inEventLoop]
            try? await Task.sleep(for: .milliseconds(1))
            seen.append(eventLoop.inEventLoop)
            let children = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<4 { group.addTask { eventLoop.inEventLoop } }
                return await group.reduce(into: []) { $0.append($1) }
            }
            return seen + children
        }
        #expect(onLoop == Array(repeating: true, count: 6))
        #expect(!eventLoop.inEventLoop, "outside the preference the test runs elsewhere")
    }

    /// The worker's gather pause: at least as long as asked, and the task is back on its loop.
    @Test func aSleepOnTheLoopsTimerLastsItsDurationAndResumesOnTheLoop() async throws {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let executor = EventLoopTaskExecutor(eventLoop)
        let (slept, onLoop) = await withTaskExecutorPreference(executor) {
            let started = ContinuousClock.now
            await executor.sleep(for: .milliseconds(20))
            return (ContinuousClock.now - started, eventLoop.inEventLoop)
        }
        #expect(slept >= .milliseconds(20), "slept \(slept)")
        #expect(onLoop)
    }
}
