#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// TraceIngest's C library calls, in the module's only file that imports the platform's libc: reading input
/// files and the byte scans of the text importers (`memchr`, `memcmp`, inlined into the hot loops).
enum Platform {
    /// `memcmp(3) == 0`: the `count` bytes at `a` and `b` are equal. Up to 16 bytes (field keys, event and
    /// device names: nearly every call) are compared in place as two overlapping words, never reading outside
    /// the `count` bytes; a `memcmp` call per key was ~10% of parsing ftrace text (`perf`).
    @inline(__always)
    static func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Bool {
        switch count {
        case 8...16:
            return a.loadUnaligned(as: UInt64.self) == b.loadUnaligned(as: UInt64.self)
                && a.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
                    == b.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
        case 4..<8:
            return a.loadUnaligned(as: UInt32.self) == b.loadUnaligned(as: UInt32.self)
                && a.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self)
                    == b.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self)
        case 1..<4:
            for i in 0..<count
            where a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) {
                return false
            }
            return true
        default:
            return count <= 0 || memcmp(a, b, count) == 0
        }
    }

    /// `memchr(3)`: the offset from `start` of the first `byte` among `count` bytes, or nil.
    @inline(__always)
    static func firstOffset(of byte: UInt8, in start: UnsafeRawPointer, count: Int) -> Int? {
        guard let hit = memchr(start, Int32(byte), count) else { return nil }
        return UnsafeRawPointer(hit) - start
    }

    /// `memmove(3)`: `count` bytes, the regions may overlap.
    @inline(__always)
    static func moveBytes(to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, count: Int) {
        memmove(destination, source, count)
    }

    /// A failed call, in words (`strerror(errno)`, or our own check).
    struct Failure: Error {
        var reason: String
    }

    /// `open(path, O_RDONLY | O_CLOEXEC)`: the descriptor; a directory is refused (and closed).
    static func openForReading(_ path: String) -> Result<Int32, Failure> {
        let fd = path.withCString { open($0, O_RDONLY | O_CLOEXEC) }
        if fd < 0 { return .failure(Failure(reason: errnoText())) }
        var st = stat()
        if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            return .failure(Failure(reason: "is a directory"))
        }
        return .success(fd)
    }

    /// `close(2)`.
    static func closeFile(_ fd: Int32) { close(fd) }

    /// `read(2)` into `buffer`, retried on EINTR: the byte count (0 at the end), or the error text.
    static func readSome(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Result<Int, Failure> {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return .success(0) }
        while true {
            let n = read(fd, base, buffer.count)
            if n >= 0 { return .success(n) }
            if errno == EINTR { continue }
            return .failure(Failure(reason: errnoText()))
        }
    }

    /// `strerror(errno)`.
    static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}
