#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Random bits drawn from the kernel 256 bytes at a time. The system's
/// generator makes one `getrandom` system call for every 64 bits: two for
/// each ULID, as many as a get-thread's socket reads and writes together.
/// Whatever makes ids on every request holds one of these.
public final class RandomReserve: RandomNumberGenerator, Sendable {
    private struct Pool {
        var bytes = [UInt8](repeating: 0, count: 256)
        var next = 256
    }

    private let pool = Mutex(Pool())

    public init() {}

    public func next() -> UInt64 {
        pool.withLock { pool in
            if pool.next == pool.bytes.count {
                let filled = pool.bytes.withUnsafeMutableBytes { getentropy($0.baseAddress, $0.count) }
                // As the system's generator does, stop rather than answer without randomness.
                precondition(filled == 0, "getentropy failed")
                pool.next = 0
            }
            let offset = pool.next
            pool.next += 8
            return pool.bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
        }
    }
}
