import HummingbirdCore
import Logging
import NIOCore
import RedisClient

/// An HTTP connection whose task runs on the connection's own event loop.
///
/// On the cooperative pool, every request crossed threads several times: the
/// loop hands the request to a pool thread, each Redis reply and the response
/// write hop back and forth, and each hop wakes a sleeping thread. On its
/// loop, the handler runs where its bytes arrive and its reply is written.
/// Handlers never block (the rule for the pool as for a loop), so a loop
/// stays free for its other connections between awaits.
struct EventLoopBoundChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value
    let inner: Inner

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopTaskExecutor(value.channel.eventLoop)) {
            await inner.handle(value: value, logger: logger)
        }
    }
}
