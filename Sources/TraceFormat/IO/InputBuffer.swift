import SystemPackage

/// A read window over a file descriptor: refills on demand, skips by seeking when the input is a regular
/// file, and by reading otherwise (pipes, standard input). Never holds more than the largest frame asked for.
final class InputBuffer {
    let fd: FileDescriptor
    let path: String
    let seekable: Bool
    private let ownsDescriptor: Bool
    private var base: UnsafeMutableRawPointer
    private var capacity: Int
    private var start = 0
    private var end = 0
    /// File offset of `base[0]`.
    private var bufferOffset: UInt64 = 0
    private(set) var atEOF = false
    /// Bytes to read beyond what is needed (small while skimming, large while decoding).
    var readAhead = 1 << 16

    init(fd: FileDescriptor, path: String, seekable: Bool, ownsDescriptor: Bool) {
        self.fd = fd
        self.path = path
        self.seekable = seekable
        self.ownsDescriptor = ownsDescriptor
        capacity = 1 << 20
        base = .allocate(byteCount: capacity, alignment: 64)
    }

    deinit {
        base.deallocate()
        if ownsDescriptor { try? fd.close() }
    }

    /// File offset of the next unread byte.
    var position: UInt64 { bufferOffset + UInt64(start) }
    /// Buffered bytes from ``position``.
    var available: Int { end - start }
    /// The buffered bytes from ``position``.
    var current: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base + start, count: end - start) }

    /// Ensures at least `n` bytes are buffered. Returns false at the end of input, with everything that
    /// remained buffered. Callers check `n` against a format limit first.
    func fill(_ n: Int) throws -> Bool {
        if end - start >= n { return true }
        if atEOF { return false }
        if capacity - start < n + readAhead / 2 && start > 0 {
            Platform.moveBytes(to: base, from: base + start, count: end - start)
            bufferOffset += UInt64(start)
            end -= start
            start = 0
        }
        if capacity < n {
            var c = capacity
            while c < n { c *= 2 }
            let nb = UnsafeMutableRawPointer.allocate(byteCount: c, alignment: 64)
            nb.copyMemory(from: base + start, byteCount: end - start)
            base.deallocate()
            base = nb
            bufferOffset += UInt64(start)
            end -= start
            start = 0
            capacity = c
        }
        while end - start < n {
            let want = min(capacity - end, max(n - (end - start), readAhead))
            let got: Int
            do {
                got = try fd.read(into: UnsafeMutableRawBufferPointer(start: base + end, count: want))
            } catch {
                throw TraceFormatError.io(path: path, operation: "read", message: "\(error)")
            }
            if got == 0 {
                atEOF = true
                return false
            }
            end += got
        }
        return true
    }

    /// Consumes `n` buffered bytes (`n` ≤ ``available``).
    func advance(_ n: Int) {
        precondition(n >= 0 && n <= end - start)
        start += n
    }

    /// Reads the next `dest.count` bytes into `dest` and consumes them: buffered bytes are copied, the rest
    /// go from the descriptor straight into `dest` (a chunk frame then crosses memory once, not twice).
    /// Returns the bytes read, fewer than asked only at the end of input.
    func read(into dest: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = dest.count
        let buffered = min(n, end - start)
        if buffered > 0 { dest.baseAddress!.copyMemory(from: base + start, byteCount: buffered) }
        start += buffered
        if buffered == n { return n }
        // The window is empty: restart it at the current position.
        bufferOffset += UInt64(end)
        start = 0
        end = 0
        var done = buffered
        while done < n && !atEOF {
            let got: Int
            do {
                got = try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: dest[done...]))
            } catch {
                throw TraceFormatError.io(path: path, operation: "read", message: "\(error)")
            }
            if got == 0 {
                atEOF = true
            } else {
                done += got
                bufferOffset += UInt64(got)
            }
        }
        return done
    }

    /// Skips `n` bytes. Returns false when the input ends first (then everything was consumed).
    func skip(_ n: UInt64) throws -> Bool {
        if UInt64(end - start) >= n {
            start += Int(n)
            return true
        }
        let rest = n - UInt64(end - start)
        bufferOffset = position + UInt64(end - start)
        start = 0
        end = 0
        if seekable {
            let size = try fileSize()
            let (target, overflow) = bufferOffset.addingReportingOverflow(rest)
            if overflow || target > size {
                try seek(to: size)
                atEOF = true
                return false
            }
            try seek(to: target)
            return true
        }
        var left = rest
        while left > 0 {
            let want = Int(min(left, UInt64(capacity)))
            let got: Int
            do {
                got = try fd.read(into: UnsafeMutableRawBufferPointer(start: base, count: want))
            } catch {
                throw TraceFormatError.io(path: path, operation: "read", message: "\(error)")
            }
            if got == 0 {
                atEOF = true
                return false
            }
            bufferOffset += UInt64(got)
            left -= UInt64(got)
        }
        return true
    }

    /// Repositions a seekable input at `offset` and drops the buffer.
    func seek(to offset: UInt64) throws {
        guard let o = Int64(exactly: offset) else {
            throw TraceFormatError.io(path: path, operation: "seek", message: "offset \(offset) out of range")
        }
        do {
            _ = try fd.seek(offset: o, from: .start)
        } catch {
            throw TraceFormatError.io(path: path, operation: "seek", message: "\(error)")
        }
        bufferOffset = offset
        start = 0
        end = 0
        atEOF = false
    }

    /// The current size of the underlying regular file.
    func fileSize() throws -> UInt64 {
        switch Platform.fileStatus(of: fd) {
        case .success(let st): return UInt64(max(0, st.size))
        case .failure(let e): throw TraceFormatError.io(path: path, operation: "stat", message: "\(e)")
        }
    }

    /// True when `fd` is a regular file (so it can be skimmed by seeking and read twice).
    static func isRegularFile(_ fd: FileDescriptor) -> Bool {
        (try? Platform.fileStatus(of: fd).get())?.isRegularFile ?? false
    }
}
