import CZlib
import TraceFormat

/// A pull source of bytes: each `read` fills the front of `buffer` and returns how many bytes it wrote,
/// 0 at the end. The streams below are chained: file or memory, then an optional decompressor.
/// Classes because they own file descriptors and C decoder state.
protocol ByteStream: AnyObject {
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(IngestError) -> Int
}

/// Bounds how far a compressed input may expand, so that a decompression bomb (a few KB that inflate to
/// terabytes) is refused quickly instead of filling memory (binary importers hold the whole input) or
/// keeping a text importer busy for hours. Real traces compress 5–50×; zstd's best case on a file of one
/// repeated line is ~4000×, so the ratio applies only beyond ``floorBytes``.
public enum DecompressionLimit {
    /// Most decompressed bytes per compressed byte read, once past ``floorBytes``.
    public static let maxRatio: UInt64 = 1000
    /// Decompressed bytes always allowed, whatever the ratio.
    public static let floorBytes: UInt64 = 64 << 20

    /// Throws ``IngestError/limitExceeded(path:offset:what:value:limit:)`` when `produced` bytes out of
    /// `consumed` compressed bytes exceed the limit.
    static func check(produced: UInt64, consumed: UInt64, path: String, format: String) throws(IngestError) {
        guard produced > floorBytes else { return }
        let (limit, overflow) = consumed.multipliedReportingOverflow(by: maxRatio)
        if !overflow && produced > max(limit, floorBytes) {
            throw .limitExceeded(
                path: path, offset: consumed,
                what: "\(format) data expanding more than \(maxRatio)× (a decompression bomb?): decompressed size",
                value: produced, limit: max(limit, floorBytes))
        }
    }
}

/// Reads a file descriptor (a file or stdin).
final class FileStream: ByteStream {
    private let fd: Int32
    private let path: String
    private let owns: Bool

    init(fd: Int32, path: String, owns: Bool) {
        self.fd = fd
        self.path = path
        self.owns = owns
    }

    /// Opens `path` read-only.
    static func open(_ path: String) throws(IngestError) -> FileStream {
        switch Platform.openForReading(path) {
        case .success(let fd): return FileStream(fd: fd, path: path, owns: true)
        case .failure(let f): throw .unreadable(path: path, reason: f.reason)
        }
    }

    deinit { if owns { Platform.closeFile(fd) } }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(IngestError) -> Int {
        switch Platform.readSome(fd, into: buffer) {
        case .success(let n): return n
        case .failure(let f): throw .unreadable(path: path, reason: f.reason)
        }
    }
}

/// Serves bytes already in memory.
final class MemoryStream: ByteStream {
    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(IngestError) -> Int {
        let n = min(buffer.count, bytes.count - position)
        if n <= 0 { return 0 }
        bytes.withUnsafeBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + position, byteCount: n)
        }
        position += n
        return n
    }
}

/// Serves `prefix` first, then the rest of `base` (bytes already pulled for magic detection or sniffing).
final class PrefixStream: ByteStream {
    private var prefix: [UInt8]
    private var position = 0
    private let base: ByteStream

    init(prefix: [UInt8], base: ByteStream) {
        self.prefix = prefix
        self.base = base
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(IngestError) -> Int {
        if position < prefix.count {
            let n = min(buffer.count, prefix.count - position)
            prefix.withUnsafeBytes { src in
                buffer.baseAddress!.copyMemory(from: src.baseAddress! + position, byteCount: n)
            }
            position += n
            if position == prefix.count { prefix = []; position = 0 }
            return n
        }
        return try base.read(into: buffer)
    }
}

/// Streaming zstd decompression (any number of concatenated frames) through TraceFormat's
/// ``ZstdDecompressor``. A stream that ends inside a frame is reported as truncated, with the compressed
/// byte offset.
final class ZstdStream: ByteStream {
    private let base: ByteStream
    private let path: String
    private let zstd: ZstdDecompressor
    private let inBuf: UnsafeMutableRawBufferPointer
    private var inPos = 0
    private var inSize = 0
    private var consumed: UInt64 = 0
    private var baseEOF = false
    private var frameOpen = false
    private var flushPending = false

    init(base: ByteStream, path: String) throws(IngestError) {
        do throws(ZstdError) {
            self.zstd = try ZstdDecompressor()
        } catch {
            throw .unreadable(path: path, reason: ZstdFrameDecoder.reason(error))
        }
        self.base = base
        self.path = path
        self.inBuf = .allocate(byteCount: ZstdDecompressor.streamInputSize, alignment: 64)
    }

    deinit {
        inBuf.deallocate()
    }

    private var produced: UInt64 = 0

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(IngestError) -> Int {
        let n = try decompress(into: buffer)
        produced += UInt64(n)
        try DecompressionLimit.check(produced: produced, consumed: consumed, path: path, format: "zstd")
        return n
    }

    private func decompress(into buffer: UnsafeMutableRawBufferPointer) throws(IngestError) -> Int {
        var outPos = 0
        while true {
            if inPos == inSize && !flushPending {
                if !baseEOF {
                    inSize = try base.read(into: inBuf)
                    inPos = 0
                    if inSize == 0 { baseEOF = true }
                }
                if baseEOF {
                    if outPos > 0 { return outPos }
                    if frameOpen {
                        throw .truncated(path: path, offset: consumed, reason: "zstd stream ends inside a frame")
                    }
                    return 0
                }
            }
            let input = UnsafeRawBufferPointer(rebasing: inBuf[..<inSize])
            let (inBefore, outBefore) = (inPos, outPos)
            var position = inPos
            do throws(ZstdError) {
                let frameEnded = try zstd.decompressStep(input, from: &position, into: buffer, at: &outPos)
                if position > inBefore || outPos > outBefore { frameOpen = !frameEnded }
            } catch {
                throw .badFormat(path: path, offset: consumed + UInt64(position), reason: error.description)
            }
            consumed += UInt64(position - inBefore)
            inPos = position
            flushPending = outPos == buffer.count
            if outPos == buffer.count { return outPos }
            if outPos > 0 && inPos == inSize { return outPos }
        }
    }
}

/// Streaming gzip decompression through zlib (concatenated members are read one after the other).
final class GzipStream: ByteStream {
    private let base: ByteStream
    private let path: String
    private let strm: UnsafeMutablePointer<z_stream>
    private let inBuf: UnsafeMutableRawBufferPointer
    private var consumed: UInt64 = 0
    private var baseEOF = false
    private var inMember = false
    private var finished = false

    init(base: ByteStream, path: String) throws(IngestError) {
        strm = .allocate(capacity: 1)
        strm.initialize(to: z_stream())
        inBuf = .allocate(byteCount: 128 * 1024, alignment: 64)
        self.base = base
        self.path = path
        // 15 + 16: gzip wrapper only, largest window.
        let rc = inflateInit2_(strm, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        if rc != Z_OK {
            strm.deallocate()
            inBuf.deallocate()
            throw .unreadable(path: path, reason: "zlib: cannot initialise (\(rc))")
        }
    }

    deinit {
        inflateEnd(strm)
        strm.deinitialize(count: 1)
        strm.deallocate()
        inBuf.deallocate()
    }

    private var produced: UInt64 = 0

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(IngestError) -> Int {
        let n = try inflateSome(into: buffer)
        produced += UInt64(n)
        try DecompressionLimit.check(produced: produced, consumed: consumed, path: path, format: "gzip")
        return n
    }

    private func inflateSome(into buffer: UnsafeMutableRawBufferPointer) throws(IngestError) -> Int {
        guard buffer.count > 0, !finished else { return 0 }
        strm.pointee.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
        strm.pointee.avail_out = UInt32(min(buffer.count, Int(UInt32.max)))
        let total = Int(strm.pointee.avail_out)
        while strm.pointee.avail_out > 0 {
            if strm.pointee.avail_in == 0 {
                if !baseEOF {
                    let n = try base.read(into: inBuf)
                    if n == 0 {
                        baseEOF = true
                    } else {
                        strm.pointee.next_in = inBuf.baseAddress!.assumingMemoryBound(to: Bytef.self)
                        strm.pointee.avail_in = UInt32(n)
                    }
                }
                if baseEOF && strm.pointee.avail_in == 0 {
                    let produced = total - Int(strm.pointee.avail_out)
                    if inMember && produced == 0 {
                        throw .truncated(path: path, offset: consumed, reason: "gzip stream ends inside a member")
                    }
                    if !inMember { finished = produced == 0 }
                    return produced
                }
            }
            let before = strm.pointee.avail_in
            let rc = inflate(strm, Z_NO_FLUSH)
            consumed += UInt64(before - strm.pointee.avail_in)
            switch rc {
            case Z_STREAM_END:
                inMember = false
                // Another member may follow (cat a.gz b.gz); trailing zero padding is tolerated.
                if strm.pointee.avail_in > 0 || !baseEOF {
                    inflateReset(strm)
                    if strm.pointee.avail_in > 0 && strm.pointee.next_in.pointee == 0 {
                        strm.pointee.avail_in = 0
                    }
                }
            case Z_OK, Z_BUF_ERROR:
                inMember = true
                if rc == Z_BUF_ERROR && strm.pointee.avail_in > 0 && before == strm.pointee.avail_in {
                    throw .badFormat(path: path, offset: consumed, reason: "gzip: no progress")
                }
            default:
                let msg = strm.pointee.msg.map { String(cString: $0) } ?? "error \(rc)"
                throw .badFormat(path: path, offset: consumed, reason: "gzip: \(msg)")
            }
        }
        return total
    }
}
