public import NIOCore

/// Runs a task's jobs on one NIO event loop. A loop that awaits one
/// connection's replies and little else (the read-model worker) resumes
/// there at once, instead of queueing behind every request on the
/// cooperative pool when the process is saturated.
public final class EventLoopTaskExecutor: TaskExecutor {
    private let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
