/// Why one chunk's data could not be turned into records.
enum ChunkDecodeError: Error, CustomStringConvertible {
    /// zstd refused the frame (corrupt, truncated, checksum mismatch, wrong size).
    case zstd(ZstdError)
    /// The decompressed payload is not a valid encoding of the chunk's records, or its layout is unknown.
    case layout(String)

    /// True for a zstd content checksum mismatch.
    var isChecksumError: Bool {
        if case .zstd(let e) = self { return e.isChecksumError }
        return false
    }

    var description: String {
        switch self {
        case .zstd(let e): e.description
        case .layout(let m): m
        }
    }
}

/// Turns one chunk's zstd frame into its 56-byte records, whatever the chunk's layout. Owns a zstd context,
/// the compact decoder's tables and a payload buffer, all reused; use one per thread.
final class ChunkFrameDecoder {
    /// The zstd context (also used for nothing else).
    let zstd: ZstdDecompressor
    /// Created at the first compact chunk: its tables cost ~0.5 MB of zeroed memory, which opening a rows
    /// trace (and every reader thread) would otherwise pay for nothing.
    private lazy var compact = CompactChunkDecoder()
    private var payload = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    init() throws(ZstdError) {
        zstd = try ZstdDecompressor()
    }

    deinit { payload.deallocate() }

    /// Decodes the frame of the chunk that `header` describes into the first `eventCount × 56` bytes of `out`,
    /// and when `kinds` is given, sets its 256 entries to the records per kind byte. The reader checked the
    /// header's sizes against the format limits.
    func decode(
        _ frame: UnsafeRawBufferPointer, header: ChunkHeader, into out: UnsafeMutableRawBufferPointer,
        kinds: UnsafeMutablePointer<UInt64>? = nil
    ) throws(ChunkDecodeError) {
        let usize = Int(header.uncompressedSize)
        switch header.layout {
        case .rows:
            do {
                try TraceReader.decodeChunkFrame(frame, into: out, size: usize, decompressor: zstd)
            } catch {
                throw .zstd(error)
            }
            if let kinds {
                kinds.update(repeating: 0, count: 256)
                TraceReader.countKinds(UnsafeRawBufferPointer(rebasing: out[..<usize]), into: kinds)
            }
        case .compact:
            if payload.count < usize {
                payload.deallocate()
                payload = .allocate(byteCount: max(usize, 1 << 20), alignment: 64)
            }
            do {
                try TraceReader.decodeChunkFrame(frame, into: payload, size: usize, decompressor: zstd)
            } catch {
                throw .zstd(error)
            }
            do {
                try compact.decode(
                    UnsafeRawBufferPointer(rebasing: payload[..<usize]), eventCount: Int(header.eventCount), into: out)
            } catch {
                throw .layout(error.description)
            }
            if let kinds { compact.kindCounts(into: kinds) }
        case nil:
            throw .layout(
                "the chunk uses layout \(header.flags & 0xFF), which this reader does not know (0 rows, 1 compact)")
        }
    }
}
