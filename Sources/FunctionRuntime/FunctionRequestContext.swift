public import Hummingbird
public import NIOCore

/// The request context of every route: Hummingbird's core storage plus the
/// request id that `RequestIdMiddleware` assigns.
public struct FunctionRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The client's `X-Request-Id`, or one generated for this request.
    public var requestId: String = ""
    /// The request's connection: a watch stream watches it to notice a client that went away.
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
        channel = source.channel
    }
}
