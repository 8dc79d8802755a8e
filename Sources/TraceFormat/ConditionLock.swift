#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex with one condition variable: the one lock of the pipelines (chunk decompression, background
/// compression, scenario workers), in the style of swift-nio's `NIOLock` and `ConditionLock`
/// (NIOConcurrencyHelpers/lock.swift): owned storage, and every pthread return code checked, since a failing
/// lock call means memory corruption or a locking bug and must stop the process rather than race.
///
/// A class because it owns the pthread objects (they must not move once initialised). Where no condition
/// is needed, `Synchronization.Mutex` is the lock to use.
package final class ConditionLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    package init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        var attributes = pthread_mutexattr_t()
        Self.check(pthread_mutexattr_init(&attributes), "pthread_mutexattr_init")
        #if DEBUG
        // Debug builds also catch relocking from the owning thread and unlocking from another one.
        Self.check(pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ERRORCHECK)), "pthread_mutexattr_settype")
        #endif
        Self.check(pthread_mutex_init(mutex, &attributes), "pthread_mutex_init")
        Self.check(pthread_mutexattr_destroy(&attributes), "pthread_mutexattr_destroy")
        Self.check(pthread_cond_init(condition, nil), "pthread_cond_init")
    }

    deinit {
        Self.check(pthread_cond_destroy(condition), "pthread_cond_destroy")
        Self.check(pthread_mutex_destroy(mutex), "pthread_mutex_destroy")
        condition.deinitialize(count: 1)
        condition.deallocate()
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Acquires the mutex.
    @inline(__always)
    package func lock() { Self.check(pthread_mutex_lock(mutex), "pthread_mutex_lock") }

    /// Releases the mutex (the calling thread holds it).
    @inline(__always)
    package func unlock() { Self.check(pthread_mutex_unlock(mutex), "pthread_mutex_unlock") }

    /// Releases the mutex, sleeps until signalled (or spuriously), and reacquires it: call in a loop that
    /// rechecks its predicate, holding the lock.
    @inline(__always)
    package func wait() { Self.check(pthread_cond_wait(condition, mutex), "pthread_cond_wait") }

    /// Wakes one waiter.
    @inline(__always)
    package func signal() { Self.check(pthread_cond_signal(condition), "pthread_cond_signal") }

    /// Wakes every waiter.
    @inline(__always)
    package func broadcast() { Self.check(pthread_cond_broadcast(condition), "pthread_cond_broadcast") }

    /// Runs `body` holding the mutex.
    @inline(__always)
    package func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock()
        defer { unlock() }
        return try body()
    }

    @inline(__always)
    static func check(_ code: Int32, _ call: StaticString) {
        precondition(code == 0, "\(call) failed: error \(code)")
    }
}
