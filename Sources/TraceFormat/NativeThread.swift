#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A POSIX thread behind the pipelines (chunk decompression, background compression, scenario workers):
/// a dedicated, joinable thread rather than the Dispatch pool, because each one runs a long loop that blocks
/// on its own ``ConditionLock``.
package struct NativeThread: @unchecked Sendable {
    private let id: pthread_t

    /// Processors online (1 when unknown).
    package static var onlineCPUs: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Starts a joinable thread running `body`, which keeps what it captures alive until it returns.
    /// Returns nil when the thread cannot be created (callers then do the work on their own thread).
    package static func start(_ body: @escaping @Sendable () -> Void) -> NativeThread? {
        final class Box {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let ctx = Unmanaged.passRetained(Box(body)).toOpaque()
        #if canImport(Darwin)
        var tid: pthread_t?
        #else
        var tid = pthread_t()
        #endif
        let rc = pthread_create(&tid, nil, { ctx in
            Unmanaged<Box>.fromOpaque(ctx!).takeRetainedValue().body()
            return nil
        }, ctx)
        #if canImport(Darwin)
        guard rc == 0, let tid else {
            Unmanaged<Box>.fromOpaque(ctx).release()
            return nil
        }
        #else
        guard rc == 0 else {
            Unmanaged<Box>.fromOpaque(ctx).release()
            return nil
        }
        #endif
        return NativeThread(id: tid)
    }

    /// Waits for the thread to return (once per thread).
    package func join() {
        let rc = pthread_join(id, nil)
        precondition(rc == 0, "pthread_join failed: error \(rc)")
    }
}
