#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif
import SystemPackage

/// TraceFormat's C library calls, in the module's only file that imports the platform's libc (Glibc, Musl or
/// Darwin): the file-system calls of crash-safe output and input buffering, the pthread lock and thread of the
/// pipelines, and two libm/libc helpers. Everything else in the module uses Swift, SystemPackage or these.
enum Platform {
    /// What `stat(2)` or `lstat(2)` says about a path or descriptor.
    struct FileStatus {
        /// `st_mode & S_IFMT`.
        private var type: UInt32
        /// `st_mode & 0o7777`.
        var permissions: UInt32
        var device: UInt64
        var inode: UInt64
        var size: Int64

        init(_ st: stat) {
            type = UInt32(st.st_mode) & UInt32(S_IFMT)
            permissions = UInt32(st.st_mode) & 0o7777
            device = UInt64(truncatingIfNeeded: st.st_dev)
            inode = UInt64(truncatingIfNeeded: st.st_ino)
            size = Int64(st.st_size)
        }

        var isRegularFile: Bool { type == UInt32(S_IFREG) }
        var isDirectory: Bool { type == UInt32(S_IFDIR) }
        var isCharacterDevice: Bool { type == UInt32(S_IFCHR) }
        var isFIFO: Bool { type == UInt32(S_IFIFO) }
        var isBlockDevice: Bool { type == UInt32(S_IFBLK) }
        var isSocket: Bool { type == UInt32(S_IFSOCK) }
        var isSymbolicLink: Bool { type == UInt32(S_IFLNK) }
        /// The same file as `other` (device and inode).
        func isSameFile(as other: FileStatus) -> Bool { device == other.device && inode == other.inode }
    }

    /// `stat(2)`: nil when the path cannot be examined.
    static func fileStatus(_ path: String) -> FileStatus? {
        var st = stat()
        return stat(path, &st) == 0 ? FileStatus(st) : nil
    }

    /// `lstat(2)` (a symbolic link itself): nil when the path cannot be examined.
    static func linkStatus(_ path: String) -> FileStatus? {
        var st = stat()
        return lstat(path, &st) == 0 ? FileStatus(st) : nil
    }

    /// `fstat(2)`.
    static func fileStatus(of fd: FileDescriptor) -> Result<FileStatus, Errno> {
        var st = stat()
        return fstat(fd.rawValue, &st) == 0 ? .success(FileStatus(st)) : .failure(Errno(rawValue: errno))
    }

    /// `readlink(2)`: the link's target bytes (at most PATH_MAX).
    static func readSymbolicLink(_ path: String) -> Result<[UInt8], Errno> {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buf, buf.count - 1)
        guard n >= 0 else { return .failure(Errno(rawValue: errno)) }
        return .success(buf[0..<n].map { UInt8(bitPattern: $0) })
    }

    /// `getpid()`.
    static var processID: Int32 { Int32(getpid()) }

    /// `fchmod(2)`, best effort (the result is not needed: a copy of the old mode is a courtesy).
    static func setPermissions(_ fd: FileDescriptor, _ permissions: UInt32) {
        _ = fchmod(fd.rawValue, mode_t(permissions))
    }

    /// `fsync(2)`; the error, or nil.
    static func synchronize(_ fd: FileDescriptor) -> Errno? {
        fsync(fd.rawValue) == 0 ? nil : Errno(rawValue: errno)
    }

    /// `unlink(2)`, best effort.
    static func removeFile(_ path: String) {
        _ = unlink(path)
    }

    /// `link(2)`: the error, or nil.
    static func hardLink(_ existing: String, to new: String) -> Errno? {
        link(existing, new) == 0 ? nil : Errno(rawValue: errno)
    }

    /// `rename(2)`: the error, or nil.
    static func renameFile(_ old: String, to new: String) -> Errno? {
        rename(old, new) == 0 ? nil : Errno(rawValue: errno)
    }

    /// `memmove(3)`: `count` bytes, the regions may overlap.
    @inline(__always)
    static func moveBytes(to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, count: Int) {
        memmove(destination, source, count)
    }

    /// `log2(3)`.
    @inline(__always)
    static func binaryLogarithm(_ x: Double) -> Double { log2(x) }
}

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
            Self.check(
                pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ERRORCHECK)), "pthread_mutexattr_settype")
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
        let rc = pthread_create(
            &tid, nil,
            { ctx in
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
