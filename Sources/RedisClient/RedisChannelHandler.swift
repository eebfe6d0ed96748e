import Logging
import NIOCore

/// One command on its way to the channel handler, with the place for its reply.
struct RedisRequest: Sendable {
    var command: RedisCommand
    var reply: ReplySlot
    var deadline: NIODeadline?
}

/// Outbound user event: the task waiting on a command without timeout was
/// cancelled, so fail everything in flight with `.cancelled` and close.
struct CancelInFlightCommands: Sendable {}

/// Encodes request batches, parses replies with hiredis and completes the
/// requests' reply slots in order. All state lives on the channel's event loop.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = [RedisRequest]
    typealias OutboundOut = ByteBuffer

    private typealias StateMachine = ConnectionStateMachine<ReplySlot>

    private var stateMachine = StateMachine()
    private let reader = RESPReplyReader()
    private var timer: Scheduled<Void>?
    private let logger: Logger
    /// A flush waits for the end of the loop's current pass over its tasks, so
    /// the commands of every request that pass runs leave in one write
    /// (one syscall, and one read for Redis) rather than one write each.
    private var flushPending = false
    private var removed = false

    init(logger: Logger) {
        self.logger = logger
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let requests = unwrapOutboundIn(data)
        var buffer = context.channel.allocator.buffer(capacity: 64 * requests.count)
        for request in requests {
            let mark = buffer.writerIndex
            do {
                try RESPCommandEncoder.encode(request.command, into: &buffer)
            } catch {
                request.reply.fail(error)
                continue
            }
            switch stateMachine.send(request.reply, deadline: request.deadline) {
            case .write(let timerDeadline):
                if let timerDeadline { armTimer(at: timerDeadline, context: context) }
            case .fail(let error):
                buffer.moveWriterIndex(to: mark)
                request.reply.fail(error)
            }
        }
        if buffer.readableBytes > 0 {
            context.write(wrapOutboundOut(buffer), promise: promise)
        } else {
            promise?.succeed(())
        }
    }

    func flush(context: ChannelHandlerContext) {
        guard !flushPending else { return }
        flushPending = true
        // Tasks queued meanwhile (other requests on this loop) run before this one.
        context.eventLoop.assumeIsolated().execute {
            self.flushPending = false
            if !self.removed { context.flush() }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try reader.feed(unwrapInboundIn(data))
            while let reply = try reader.nextReply() {
                switch stateMachine.receivedReply() {
                case .complete(let slot):
                    slot.complete(with: reply)
                case .ignore:
                    return
                case .closeConnection(let failures):
                    logger.error("Redis sent a reply nobody was waiting for; closing the connection")
                    close(context: context, failing: failures)
                    return
                }
            }
        } catch {
            logger.error("Closing Redis connection after a protocol error", metadata: ["error": "\(error)"])
            close(context: context, failing: stateMachine.close(reason: error))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("Redis connection error", metadata: ["error": "\(error)"])
        let reason = RedisError(code: .connectionClosed, message: "connection failed: \(error)", underlying: error)
        close(context: context, failing: stateMachine.close(reason: reason))
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarmTimer()
        fail(stateMachine.channelClosed())
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
        disarmTimer()
        fail(stateMachine.channelClosed())
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is CancelInFlightCommands else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        let reason = RedisError(code: .cancelled, message: "command cancelled; the connection was closed")
        close(context: context, failing: stateMachine.close(reason: reason))
        promise?.succeed(())
    }

    private func armTimer(at deadline: NIODeadline, context: ChannelHandlerContext) {
        timer?.cancel()
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.timerFired(context: context)
        }
    }

    private func disarmTimer() {
        timer?.cancel()
        timer = nil
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        switch stateMachine.timerFired(now: .now()) {
        case .none:
            break
        case .arm(let deadline):
            armTimer(at: deadline, context: context)
        case .closeConnection(let failures):
            logger.warning(
                "Redis command timed out; closing the connection", metadata: ["in_flight": "\(failures.count)"])
            close(context: context, failing: failures)
        }
    }

    /// Closes before failing, so a caller woken by the failure already sees `isClosed`.
    private func close(context: ChannelHandlerContext, failing failures: [StateMachine.Failure]) {
        context.close(promise: nil)
        fail(failures)
    }

    private func fail(_ failures: [StateMachine.Failure]) {
        for failure in failures {
            failure.promise.fail(failure.error)
        }
    }
}
