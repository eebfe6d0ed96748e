public import Hummingbird

/// The request context of every route: Hummingbird's core storage plus the
/// request id that `RequestIdMiddleware` assigns.
public struct FunctionRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The client's `X-Request-Id`, or one generated for this request.
    public var requestId: String = ""

    public init(source: ApplicationRequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
    }
}
