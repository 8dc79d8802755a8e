import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Where contenders' standard output goes: a descriptor the harness owns, opened once on /dev/null after
/// checking that it is the null character device (1:3), and checked again around every child run.
///
/// A benchmark whose /dev/null had become a regular file (a tool that renamed a temporary file over it, as
/// `dmatrace -o /dev/null` once did) would make every later `zstd -d -c >/dev/null` write gigabytes to
/// disk and the ratios worthless: the harness aborts instead.
enum OutputSink {
    /// Throws unless /dev/null is the null character device.
    static func checkDevNull(_ when: String) throws {
        var st = stat()
        guard stat("/dev/null", &st) == 0, (st.st_mode & S_IFMT) == S_IFCHR, major(st.st_rdev) == 1,
            minor(st.st_rdev) == 3
        else {
            throw BenchError(
                "/dev/null is not the null character device \(when): aborting (measurements would write to a file)")
        }
    }

    static func major(_ dev: dev_t) -> UInt32 {
        UInt32(truncatingIfNeeded: ((dev >> 8) & 0xFFF) | ((dev >> 32) & ~0xFFF))
    }
    static func minor(_ dev: dev_t) -> UInt32 { UInt32(truncatingIfNeeded: (dev & 0xFF) | ((dev >> 12) & ~0xFF)) }

    /// The harness's descriptor on the null device (opened on first use, never closed).
    nonisolated(unsafe) private static var descriptor: Int32 = -1

    /// The descriptor children write their standard output to.
    static func fd() throws -> Int32 {
        if descriptor >= 0 { return descriptor }
        try checkDevNull("before the first run")
        let fd = open("/dev/null", O_WRONLY | O_CLOEXEC)
        var st = stat()
        guard fd >= 0, fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFCHR else {
            throw BenchError("cannot open /dev/null as a character device")
        }
        descriptor = fd
        return fd
    }

    /// Runs `body` (one child run) between two checks of /dev/null.
    static func guarded<T>(_ what: String, _ body: (Int32) throws -> T) throws -> T {
        let fd = try fd()
        try checkDevNull("before \(what)")
        let r = try body(fd)
        try checkDevNull("after \(what)")
        return r
    }
}
