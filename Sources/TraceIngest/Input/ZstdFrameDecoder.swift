import TraceFormat

/// The bounds the binary importers put around TraceFormat's ``ZstdDecompressor`` (the one libzstd wrapper):
/// trace.dat v7 sections and flyrecord chunks are single zstd frames whose decompressed size the file
/// declares, and test fixtures are whole `.zst` files. Failures are worded for the importers' messages.
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
        var out: [UInt8] = []
        return decompress(src, expectedSize: expectedSize, appendingTo: &out, using: nil).map { out }
    }

    /// As ``decompress(_:expectedSize:)``, appending the bytes to `out` (left as it was on failure) and
    /// decompressing with `decompressor` when given (one libzstd context reused across frames).
    static func decompress(
        _ src: UnsafeRawBufferPointer, expectedSize: Int, appendingTo out: inout [UInt8],
        using decompressor: ZstdDecompressor?
    ) -> Result<Void, Failure> {
        guard expectedSize >= 0 else { return .failure(Failure(reason: "negative size")) }
        if expectedSize == 0 { return .success(()) }
        guard src.baseAddress != nil, src.count > 0 else {
            return .failure(Failure(reason: "empty zstd frame"))
        }
        // Refuse before allocating: a size the frame cannot produce (zstd's best case is a 4-byte RLE block
        // per 128 KiB), or one its own header contradicts. A few bytes must not reserve megabytes.
        let (most, overflow) = (src.count + 4).multipliedReportingOverflow(by: 32 * 1024)
        if !overflow && expectedSize > most {
            return .failure(
                Failure(reason: "\(src.count) compressed bytes cannot hold the \(expectedSize) bytes declared"))
        }
        if let declared = ZstdDecompressor.declaredContentSize(src), declared > UInt64(expectedSize) {
            return .failure(Failure(reason: "zstd frame declares \(declared) bytes, \(expectedSize) expected"))
        }
        let start = out.count
        do throws(ZstdError) {
            let zstd: ZstdDecompressor
            if let decompressor { zstd = decompressor } else { zstd = try ZstdDecompressor() }
            // Decompressed in place at the end of `out` (zeroed first: Array has no uninitialized tail).
            out.append(contentsOf: repeatElement(0, count: expectedSize))
            var failure: ZstdError?
            out.withUnsafeMutableBytes { all in
                do throws(ZstdError) {
                    try zstd.decompress(src, exactlyInto: UnsafeMutableRawBufferPointer(rebasing: all[start...]))
                } catch {
                    failure = error
                }
            }
            if let failure { throw failure }
            return .success(())
        } catch {
            out.removeSubrange(start...)
            return .failure(Failure(reason: reason(error)))
        }
    }

    /// Decodes a whole `.zst` stream (one or more frames) of unknown size, refusing to grow past `limit` bytes.
    static func decompressStream(_ src: UnsafeRawBufferPointer, limit: Int) -> Result<[UInt8], Failure> {
        do throws(ZstdError) {
            let zstd = try ZstdDecompressor()
            let chunk = max(ZstdDecompressor.streamOutputSize, 1 << 16)
            var out: [UInt8] = []
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
            defer { scratch.deallocate() }
            var inPos = 0
            var frameOpen = false
            while true {
                var produced = 0
                let inBefore = inPos
                let frameEnded = try zstd.decompressStep(src, from: &inPos, into: scratch, at: &produced)
                if inPos > inBefore || produced > 0 { frameOpen = !frameEnded }
                if produced > 0 {
                    guard out.count <= limit - produced else {
                        return .failure(Failure(reason: "decompressed data exceeds \(limit) bytes"))
                    }
                    out.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[0..<produced]))
                }
                if inPos == src.count && produced < chunk { break }
            }
            if frameOpen { return .failure(Failure(reason: "zstd stream ends inside a frame")) }
            return .success(out)
        } catch {
            return .failure(Failure(reason: reason(error)))
        }
    }

    /// The importers' wording of a ``ZstdError``.
    static func reason(_ error: ZstdError) -> String {
        switch error {
        case .outOfMemory: "zstd: out of memory"
        case .sizeMismatch(let declared, let actual): "zstd frame gave \(actual) bytes, \(declared) declared"
        default: error.description
        }
    }
}
