import NIOCore

/// Tells a long response (a watch stream) that its client went away: the
/// client's side of the connection closed, or the connection ended. Without
/// it a quiet stream would notice only at its next write, up to a heartbeat
/// interval later, holding a Redis connection all that time.
enum ClientDisconnect {
    private static let handlerName = "threadweave.client-disconnect"

    /// Calls `onGone` once when the client goes away, until `stopWatching` is called.
    static func watch(_ channel: any Channel, onGone: @escaping @Sendable () -> Void) async {
        try? await channel.eventLoop.submit {
            // First in the pipeline: it sees the end of input before any decoder.
            try channel.pipeline.syncOperations.addHandler(Handler(onGone: onGone), name: handlerName, position: .first)
        }.get()
    }

    static func stopWatching(_ channel: any Channel) async {
        try? await channel.pipeline.removeHandler(name: handlerName).get()
    }

    private final class Handler: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        private var onGone: (@Sendable () -> Void)?

        init(onGone: @escaping @Sendable () -> Void) {
            self.onGone = onGone
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .some(.inputClosed) = event as? ChannelEvent { clientWentAway() }
            context.fireUserInboundEventTriggered(event)
        }

        func channelInactive(context: ChannelHandlerContext) {
            clientWentAway()
            context.fireChannelInactive()
        }

        private func clientWentAway() {
            onGone?()
            onGone = nil
        }
    }
}
