import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Many shells start processes with a soft limit of 1024 descriptors while
/// the hard limit is far higher: an HTTP process that may hold
/// `--max-connections` sockets (plus Redis connections and files) raises its
/// soft limit to what it needs, within the hard limit, as servers commonly do.
enum FileDescriptorLimit {
    /// Descriptors beyond the HTTP connections: Redis connections, the listener, logs, the runtime's own.
    static let headroom = 512

    static func raise(forConnections connections: Int, logger: Logger) {
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return }
        let needed = rlim_t(connections + headroom)
        guard limit.rlim_cur < needed else { return }
        var wanted = limit
        wanted.rlim_cur = min(needed, limit.rlim_max)
        let now = setrlimit(resource, &wanted) == 0 ? wanted.rlim_cur : limit.rlim_cur
        if now < needed {
            logger.warning(
                "the open-file limit is below what --max-connections needs: past it, new connections wait",
                metadata: ["limit": "\(now)", "needed": "\(needed)"])
        }
    }
}
