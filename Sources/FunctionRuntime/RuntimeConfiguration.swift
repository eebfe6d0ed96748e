/// How one HTTP process serves functions. Read once at the edge (the CLI's
/// flags and environment) and passed down; nothing below reads the environment.
public struct RuntimeConfiguration: Sendable, Hashable {
    public struct HTTP: Sendable, Hashable {
        public var host: String
        public var port: Int
        /// Bodies above this are refused with 413 while being read (DESIGN §4: 1 MiB).
        public var maximumBodyBytes: Int
        /// Deeper JSON is refused with 400 before it is decoded, so no body can exhaust a stack.
        public var maximumJSONDepth: Int
        /// A connection that completes no request part for this long is closed:
        /// a kept-alive connection left idle, and one still trickling its request
        /// head (slow headers hold a connection open that way). A response being
        /// written, such as a watch stream, is never cut.
        public var idleTimeout: Duration
        /// Connections open at once, watch streams included (as many as a process
        /// may watch). Past it the process accepts no more until one closes: new
        /// ones wait in the listen backlog, so many slow clients cannot exhaust
        /// its file descriptors or memory.
        public var maximumConnections: Int

        public init(
            host: String, port: Int, maximumBodyBytes: Int = 1 << 20, maximumJSONDepth: Int = 32,
            idleTimeout: Duration = .seconds(30), maximumConnections: Int = 10_000
        ) {
            self.host = host
            self.port = port
            self.maximumBodyBytes = maximumBodyBytes
            self.maximumJSONDepth = maximumJSONDepth
            self.idleTimeout = idleTimeout
            self.maximumConnections = maximumConnections
        }
    }

    /// Which functions the process serves and how they are addressed.
    public enum Mode: Sendable, Hashable {
        /// `threadweave serve`: every function's REST route plus `POST /function/<name>`.
        case gateway
        /// `threadweave function <name>`: that function on `POST /` and on its REST route.
        case single(name: String)
    }

    public var http: HTTP
    public var mode: Mode
    /// The `Server` response header and the application's logger label.
    public var serverName: String

    public init(http: HTTP, mode: Mode, serverName: String = "threadweave") {
        self.http = http
        self.mode = mode
        self.serverName = serverName
    }
}
