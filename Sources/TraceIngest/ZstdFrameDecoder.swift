import CZstd

/// Small libzstd helpers for the binary importers: trace.dat v7 sections and flyrecord chunks are single zstd
/// frames whose decompressed size the file declares, and test fixtures are whole `.zst` files.
///
/// Internal on purpose: the ingest layer owns input decompression (`IngestInput`); this only covers frames
/// embedded inside a format.
enum ZstdFrameDecoder {
    /// Why a frame could not be decoded, in words (libzstd's error name or our own check).
    struct Failure: Error {
        let reason: String
    }

    /// Decodes one frame (or several concatenated) that must yield exactly `expectedSize` bytes.
    /// `expectedSize` must already be checked against a limit by the caller: it is allocated as given.
    static func decompress(_ src: UnsafeRawBufferPointer, expectedSize: Int) -> Result<[UInt8], Failure> {
        guard expectedSize >= 0 else { return .failure(Failure(reason: "negative size")) }
        if expectedSize == 0 { return .success([]) }
        guard let base = src.baseAddress, src.count > 0 else {
            return .failure(Failure(reason: "empty zstd frame"))
        }
        // Refuse before allocating: a size the frame cannot produce (zstd's best case is a 4-byte RLE block
        // per 128 KiB), or one its own header contradicts. A few bytes must not reserve megabytes.
        let (most, overflow) = (src.count + 4).multipliedReportingOverflow(by: 32 * 1024)
        if !overflow && expectedSize > most {
            return .failure(Failure(reason: "\(src.count) compressed bytes cannot hold the \(expectedSize) bytes declared"))
        }
        let declared = ZSTD_getFrameContentSize(base, src.count)
        if declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != ZSTD_CONTENTSIZE_ERROR && declared > UInt64(expectedSize) {
            return .failure(Failure(reason: "zstd frame declares \(declared) bytes, \(expectedSize) expected"))
        }
        var failure: Failure?
        let out = [UInt8](unsafeUninitializedCapacity: expectedSize) { buf, initialized in
            let r = ZSTD_decompress(buf.baseAddress, expectedSize, base, src.count)
            if ZSTD_isError(r) != 0 {
                failure = Failure(reason: "zstd: " + String(cString: ZSTD_getErrorName(r)))
                initialized = 0
            } else if r != expectedSize {
                failure = Failure(reason: "zstd frame gave \(r) bytes, \(expectedSize) declared")
                initialized = 0
            } else {
                initialized = r
            }
        }
        if let failure { return .failure(failure) }
        return .success(out)
    }

    /// Decodes a whole `.zst` stream (one or more frames) of unknown size, refusing to grow past `limit` bytes.
    static func decompressStream(_ src: UnsafeRawBufferPointer, limit: Int) -> Result<[UInt8], Failure> {
        guard let dctx = ZSTD_createDCtx() else { return .failure(Failure(reason: "zstd: out of memory")) }
        defer { ZSTD_freeDCtx(dctx) }
        let chunk = max(ZSTD_DStreamOutSize(), 1 << 16)
        var out: [UInt8] = []
        var scratch = [UInt8](repeating: 0, count: chunk)
        var input = ZSTD_inBuffer(src: src.baseAddress, size: src.count, pos: 0)
        var frameOpen = false
        while true {
            var produced = 0
            var ret = 0
            let inBefore = input.pos
            scratch.withUnsafeMutableBytes { s in
                var output = ZSTD_outBuffer(dst: s.baseAddress, size: chunk, pos: 0)
                ret = ZSTD_decompressStream(dctx, &output, &input)
                produced = output.pos
            }
            if ZSTD_isError(ret) != 0 {
                return .failure(Failure(reason: "zstd: " + String(cString: ZSTD_getErrorName(ret))))
            }
            if input.pos > inBefore || produced > 0 { frameOpen = ret != 0 }
            if produced > 0 {
                guard out.count <= limit - produced else {
                    return .failure(Failure(reason: "decompressed data exceeds \(limit) bytes"))
                }
                out.append(contentsOf: scratch[0..<produced])
            }
            if input.pos == input.size && produced < chunk { break }
        }
        if frameOpen { return .failure(Failure(reason: "zstd stream ends inside a frame")) }
        return .success(out)
    }
}
