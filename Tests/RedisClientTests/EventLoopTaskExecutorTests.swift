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
}
