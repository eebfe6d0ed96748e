import NIOCore
import NIOSSL
import NIOTLS

/// TLS for a `rediss://` connection. The files are read once, when this is
/// made (at the edge), so a missing or unreadable file is reported at start,
/// and every connection shares one context. The server's certificate is
/// always verified: against the CA file when given, else the system's trust
/// roots, and its name against the URL's host (its IP address when the host
/// is one).
public struct RedisTLS: Sendable {
    let context: NIOSSLContext

    /// `caFile`: PEM certificates to trust instead of the system's roots.
    /// `certificateFile` and `keyFile` (PEM, both or neither): a client certificate, for mutual TLS.
    public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) throws(RedisError) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .fullVerification
        if let caFile {
            configuration.trustRoots = .certificates(try Self.certificates(caFile, role: "CA file"))
        }
        switch (certificateFile, keyFile) {
        case (nil, nil):
            break
        case (let certificateFile?, let keyFile?):
            configuration.certificateChain = try Self.certificates(certificateFile, role: "client certificate file")
                .map { .certificate($0) }
            do {
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            } catch {
                throw Self.invalid("cannot read the client key file \(keyFile) as a PEM private key: \(error)")
            }
        default:
            throw Self.invalid("a client certificate needs both a certificate file and a key file")
        }
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw Self.invalid("the TLS settings are unusable: \(error)")
        }
    }

    /// The handler that goes first in a connection's pipeline. The host is
    /// sent as SNI and checked against the certificate; an IP address cannot
    /// be sent as SNI, so NIOSSL checks the certificate against the peer's address instead.
    func makeHandler(host: String) throws -> NIOSSLClientHandler {
        let isIPAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        return try NIOSSLClientHandler(context: context, serverHostname: isIPAddress ? nil : host)
    }

    private static func certificates(_ path: String, role: String) throws(RedisError) -> [NIOSSLCertificate] {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw invalid("cannot read the \(role) \(path) as PEM certificates: \(error)")
        }
        guard !certificates.isEmpty else { throw invalid("the \(role) \(path) holds no PEM certificate") }
        return certificates
    }

    private static func invalid(_ message: String) -> RedisError {
        RedisError(code: .invalidConfiguration, message: message)
    }
}

/// Goes right after the TLS handler and reports when the handshake is done,
/// or why it never will be. NIOSSL starts the handshake as soon as the socket
/// connects, and a failed one closes the channel before any command could
/// observe why; this keeps the reason (an untrusted certificate, a wrong name).
final class TLSHandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let deadline: NIODeadline
    private var promise: EventLoopPromise<Void>?
    private var timer: Scheduled<Void>?
    /// Succeeds once TLS is up; fails with the handshake's error, or at the deadline.
    private(set) var handshake: EventLoopFuture<Void>?

    init(deadline: NIODeadline) {
        self.deadline = deadline
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let promise = context.eventLoop.makePromise(of: Void.self)
        self.promise = promise
        handshake = promise.futureResult
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.complete(.failure(ChannelError.connectTimeout(.zero)))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        complete(.failure(ChannelError.ioOnClosedChannel))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent { complete(.success(())) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        complete(.failure(error))
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        complete(.failure(ChannelError.ioOnClosedChannel))
        context.fireChannelInactive()
    }

    private func complete(_ result: Result<Void, any Error>) {
        timer?.cancel()
        timer = nil
        promise?.completeWith(result)
        promise = nil
    }
}
