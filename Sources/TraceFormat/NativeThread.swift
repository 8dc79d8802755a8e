#if canImport(Glibc)
import Glibc
#endif

/// The POSIX threads behind the pipelines (chunk decompression, background compression, scenario workers):
/// dedicated, joinable threads rather than the Dispatch pool, because each one runs a long loop that blocks
/// on its own condition variable.
package enum NativeThread {
    /// Processors online (1 when unknown).
    package static var onlineCPUs: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Starts a joinable thread running `body`, which keeps what it captures alive until it returns.
    /// Returns nil when the thread cannot be created (callers then do the work on their own thread).
    package static func start(_ body: @escaping @Sendable () -> Void) -> pthread_t? {
        final class Box {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let ctx = Unmanaged.passRetained(Box(body)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { ctx in
            Unmanaged<Box>.fromOpaque(ctx!).takeRetainedValue().body()
            return nil
        }, ctx)
        guard rc == 0 else {
            Unmanaged<Box>.fromOpaque(ctx).release()
            return nil
        }
        return tid
    }
}
