import CZstd
import SystemPackage

/// An error from libzstd or from the checks this layer adds around it (declared sizes, truncation).
public enum ZstdError: Error, Equatable, Sendable, CustomStringConvertible {
    /// libzstd returned an error code; `name` is `ZSTD_getErrorName`'s text.
    case library(code: Int, name: String)
    /// libzstd could not allocate a context.
    case outOfMemory
    /// The frame header does not declare its decompressed size (or is not a valid frame header).
    case contentSizeUnknown
    /// The frame header declares more decompressed bytes than the caller allows.
    case contentSizeTooLarge(declared: UInt64, limit: Int)
    /// The input ended inside a frame.
    case truncatedFrame
    /// The frame decompressed to a different number of bytes than its header declared.
    case sizeMismatch(declared: Int, actual: Int)

    /// True when the frame's content checksum did not match its data.
    public var isChecksumError: Bool {
        if case .library(let code, _) = self {
            return ZSTD_getErrorCode(code) == ZSTD_error_checksum_wrong
        }
        return false
    }

    public var description: String {
        switch self {
        case .library(_, let name): "zstd: \(name)"
        case .outOfMemory: "zstd: cannot allocate a context"
        case .contentSizeUnknown: "zstd frame does not declare its content size"
        case .contentSizeTooLarge(let declared, let limit):
            "zstd frame declares \(declared) decompressed bytes, more than the limit of \(limit)"
        case .truncatedFrame: "zstd frame is truncated"
        case .sizeMismatch(let declared, let actual):
            "zstd frame declares \(declared) bytes but decompressed to \(actual)"
        }
    }
}

@inline(__always)
func zstdCheck(_ result: Int) throws(ZstdError) -> Int {
    if ZSTD_isError(result) != 0 {
        throw ZstdError.library(code: result, name: String(cString: ZSTD_getErrorName(result)))
    }
    return result
}

/// Compresses whole buffers into single zstd frames, each with content size and content checksum.
///
/// Owns one `ZSTD_CCtx`, reused across frames; use one compressor per thread. With `workers > 0`
/// libzstd compresses large frames with that many threads (the frame format is unchanged).
public final class ZstdCompressor {
    private let cctx: OpaquePointer
    /// The compression level in use.
    public let level: Int32
    /// Worker threads libzstd accepted (0 when the library is single-threaded or none were asked for).
    public let workers: Int32

    /// Creates a compressor.
    /// - Parameters:
    ///   - level: zstd level (3 is the CLI default; fast and about 3× on DMA traces).
    ///   - workers: libzstd worker threads for one frame; 0 compresses on the calling thread.
    ///   - jobSize: bytes per worker job when `workers > 0` (libzstd's minimum is 512 KiB); smaller jobs
    ///     let a frame of a few MiB use all workers.
    /// - Throws: ``ZstdError`` when a parameter is rejected.
    public init(level: Int32 = 3, workers: Int32 = 0, jobSize: Int32 = 1 << 20) throws(ZstdError) {
        guard let c = ZSTD_createCCtx() else { throw ZstdError.outOfMemory }
        do {
            _ = try zstdCheck(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level))
            _ = try zstdCheck(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1))
            _ = try zstdCheck(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1))
        } catch {
            ZSTD_freeCCtx(c)
            throw error
        }
        var accepted: Int32 = 0
        // A libzstd built without threads rejects nbWorkers; compression then simply stays single-threaded.
        if workers > 0, ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_nbWorkers, workers)) == 0 {
            accepted = workers
            _ = ZSTD_CCtx_setParameter(c, ZSTD_c_jobSize, jobSize)
        }
        self.cctx = c
        self.level = level
        self.workers = accepted
    }

    deinit { ZSTD_freeCCtx(cctx) }

    /// The largest frame `count` input bytes can compress to.
    public static func bound(_ count: Int) -> Int { ZSTD_compressBound(count) }

    /// Compresses `source` into one frame written to the start of `destination`.
    /// - Returns: the frame's size in bytes.
    /// - Throws: ``ZstdError`` (for example when `destination` is smaller than ``bound(_:)``).
    public func compressFrame(
        _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer
    ) throws(ZstdError) -> Int {
        // compress2 resets the session and pledges source.count, so the header carries the content size.
        try zstdCheck(
            ZSTD_compress2(cctx, destination.baseAddress, destination.count, source.baseAddress, source.count))
    }
}

/// Decompresses zstd frames: one-shot into a caller buffer (sizes checked before any work) or streaming.
///
/// Owns one `ZSTD_DCtx`, reused across frames; use one decompressor per thread.
public final class ZstdDecompressor {
    private let dctx: OpaquePointer

    /// Creates a decompressor.
    /// - Throws: ``ZstdError/outOfMemory``.
    public init() throws(ZstdError) {
        guard let d = ZSTD_createDCtx() else { throw ZstdError.outOfMemory }
        self.dctx = d
    }

    deinit { ZSTD_freeDCtx(dctx) }

    /// The decompressed size a frame header declares, or nil when absent or not a frame.
    public static func declaredContentSize(_ frame: UnsafeRawBufferPointer) -> UInt64? {
        let size = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        // ZSTD_CONTENTSIZE_UNKNOWN (-1) and ZSTD_CONTENTSIZE_ERROR (-2) as unsigned long long.
        if size >= UInt64.max - 1 { return nil }
        return UInt64(size)
    }

    /// The compressed size of the frame starting at `bytes`, if `bytes` holds all of it.
    public static func frameSize(_ bytes: UnsafeRawBufferPointer) -> Int? {
        let r = ZSTD_findFrameCompressedSize(bytes.baseAddress, bytes.count)
        return ZSTD_isError(r) != 0 ? nil : r
    }

    /// Decompresses exactly one frame (`frame` holds it and nothing else) into `destination`.
    ///
    /// The declared content size is read first and checked against `limit` and `destination.count`, so a
    /// frame claiming a huge size is refused before anything is decompressed or allocated. The content
    /// checksum is verified by libzstd.
    /// - Returns: the number of bytes written (always the declared size).
    /// - Throws: ``ZstdError``: size unknown or too large, checksum mismatch, corrupt or truncated data.
    public func decompressFrame(
        _ frame: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer, limit: Int
    ) throws(ZstdError) -> Int {
        guard let declared = Self.declaredContentSize(frame) else { throw ZstdError.contentSizeUnknown }
        guard declared <= UInt64(min(limit, destination.count)) else {
            throw ZstdError.contentSizeTooLarge(declared: declared, limit: min(limit, destination.count))
        }
        let n = Int(declared)
        let r = ZSTD_decompressDCtx(dctx, destination.baseAddress, n, frame.baseAddress, frame.count)
        if ZSTD_isError(r) != 0 {
            if ZSTD_getErrorCode(r) == ZSTD_error_srcSize_wrong { throw ZstdError.truncatedFrame }
            _ = try zstdCheck(r)
        }
        guard r == n else { throw ZstdError.sizeMismatch(declared: n, actual: r) }
        return r
    }

    /// Decompresses `source` (one frame or several concatenated) when it yields exactly `count` bytes.
    ///
    /// The caller has already bounded `count`: it is allocated as given. Unlike
    /// ``decompressFrame(_:into:limit:)`` the frames need not declare their size.
    /// - Throws: ``ZstdError/sizeMismatch(declared:actual:)`` (`declared` is `count`) when the data
    ///   decompresses to another size; ``ZstdError/library(code:name:)`` for corrupt data.
    public func decompress(_ source: UnsafeRawBufferPointer, exactly count: Int) throws(ZstdError) -> [UInt8] {
        var failure: ZstdError?
        let out = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = 0
            do throws(ZstdError) {
                try decompress(source, exactlyInto: UnsafeMutableRawBufferPointer(buffer))
                initialized = count
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return out
    }

    /// Decompresses `source` (one frame or several concatenated) into all of `destination`, when it yields
    /// exactly `destination.count` bytes (the caller's buffer: no allocation).
    /// - Throws: as ``decompress(_:exactly:)``; `destination`'s contents are then unspecified.
    public func decompress(_ source: UnsafeRawBufferPointer, exactlyInto destination: UnsafeMutableRawBufferPointer)
        throws(ZstdError)
    {
        let count = destination.count
        let r = ZSTD_decompressDCtx(dctx, destination.baseAddress, count, source.baseAddress, source.count)
        let n = try zstdCheck(r)
        guard n == count else { throw .sizeMismatch(declared: count, actual: n) }
    }

    /// The input buffer size libzstd recommends for streaming (`ZSTD_DStreamInSize`).
    public static var streamInputSize: Int { ZSTD_DStreamInSize() }
    /// The output buffer size libzstd recommends for streaming (`ZSTD_DStreamOutSize`).
    public static var streamOutputSize: Int { ZSTD_DStreamOutSize() }

    /// Starts a new stream: forgets any frame a previous ``decompressStep(_:from:into:at:)`` left open.
    public func resetStream() throws(ZstdError) {
        _ = try zstdCheck(ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only))
    }

    /// One streaming step (`ZSTD_decompressStream`): reads `input` from `inputPosition`, writes `output` from
    /// `outputPosition`, and advances both positions (also when it throws, so an error's offset is exact).
    /// - Returns: true when the step ended exactly at a frame boundary (libzstd returned 0). After a frame
    ///   ends, a further call without progress returns a hint for the next header, so only a step that made
    ///   progress may decide whether a frame is open.
    /// - Throws: ``ZstdError/library(code:name:)`` for corrupt data.
    public func decompressStep(
        _ input: UnsafeRawBufferPointer, from inputPosition: inout Int,
        into output: UnsafeMutableRawBufferPointer, at outputPosition: inout Int
    ) throws(ZstdError) -> Bool {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: inputPosition)
        var outBuffer = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: outputPosition)
        let ret = ZSTD_decompressStream(dctx, &outBuffer, &inBuffer)
        inputPosition = inBuffer.pos
        outputPosition = outBuffer.pos
        return try zstdCheck(ret) == 0
    }

    /// Streams every frame of `read`'s data through `sink`, detecting a stream that ends inside a frame.
    ///
    /// - Parameters:
    ///   - read: fills the buffer it is given and returns the byte count; 0 means end of input.
    ///   - sink: receives decompressed bytes, valid only during the call.
    /// - Throws: ``ZstdError/truncatedFrame`` when the input ends mid-frame; other ``ZstdError``s; and
    ///   whatever `read` or `sink` throw.
    public func decompressStream(
        read: (UnsafeMutableRawBufferPointer) throws -> Int,
        sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        try resetStream()
        let inBuf = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.streamInputSize, alignment: 64)
        defer { inBuf.deallocate() }
        let outBuf = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.streamOutputSize, alignment: 64)
        defer { outBuf.deallocate() }
        var frameOpen = false
        while true {
            let n = try read(inBuf)
            if n == 0 { break }
            let input = UnsafeRawBufferPointer(rebasing: inBuf[..<n])
            var inPos = 0
            while true {
                var outPos = 0
                let before = inPos
                let frameEnded = try decompressStep(input, from: &inPos, into: outBuf, at: &outPos)
                if inPos > before || outPos > 0 { frameOpen = !frameEnded }
                if outPos > 0 { try sink(UnsafeRawBufferPointer(rebasing: outBuf[..<outPos])) }
                if inPos == n && outPos < outBuf.count { break }
            }
        }
        if frameOpen { throw ZstdError.truncatedFrame }
    }

    /// Streams a file descriptor's zstd data through `sink` (see ``decompressStream(read:sink:)``).
    public func decompress(from fd: FileDescriptor, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try decompressStream(read: { try fd.read(into: $0) }, sink: sink)
    }
}
