public import NIOCore

/// Runs a task's jobs on one NIO event loop: the read-model worker's loop on
/// its blocking connection's, an HTTP connection's requests on that
/// connection's. A job resumed by a reply runs where the reply arrived,
/// with no hand-over to another thread.
///
/// Jobs go to `EventLoop.execute`: a task must not run under this preference
/// after its loop has shut down.
public final class EventLoopTaskExecutor: TaskExecutor {
    private let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// Waits `duration` on the loop's own timer, for a task running under this preference.
    /// `Task.sleep` wakes Dispatch's timer thread, which wakes a cooperative-pool thread, which
    /// hands the task back to this loop: three threads woken for one pause. Not cancellable: for
    /// pauses of a few milliseconds.
    public func sleep(for duration: Duration) async {
        try? await eventLoop.scheduleTask(in: TimeAmount(duration)) {}.futureResult.get()
    }
}
