import FoundationEssentials
import SystemPackage

/// One entry of the index (the zstd seekable format's seek table).
public struct SeekEntry: Sendable, Equatable, Codable {
    /// Bytes of the span: everything after the previous entry's span up to and including this chunk's frame.
    public var compressedSize: UInt32
    /// Decompressed bytes of the span (the chunk's records; 0 for a span with side frames only).
    public var decompressedSize: UInt32
    /// Low 32 bits of XXH64 of the decompressed bytes, when the table carries checksums.
    public var checksum: UInt32?
}

/// One decoded chunk, handed to ``TraceReader/forEachChunk(_:)``; `records` is valid only during the call.
public struct DecodedChunk {
    /// Where the chunk is and what its header says.
    public var info: ChunkInfo
    /// The chunk's records, `info.header.eventCount × 56` bytes. Unknown kinds are included; use
    /// `Event(record:)`, which returns nil for them.
    public var records: UnsafeRawBufferPointer

    /// Number of records.
    public var count: Int { records.count / Event.recordSize }

    /// Calls `body` with each known event of the chunk and its record index in the file (unknown kinds
    /// are skipped).
    @inlinable
    public func forEachEvent(_ body: (Int, Event) throws -> Void) rethrows {
        guard let base = records.baseAddress else { return }
        let first = Int(info.firstRecord)
        for i in 0..<count {
            if let e = Event(record: base + i &* Event.recordSize) { try body(first &+ i, e) }
        }
    }
}

/// Reads a `.dmat` trace from a path or standard input (`-`).
///
/// Opening a regular file skims it (header, side tables and chunk headers; chunk data is seeked over), so
/// ``metadata``, ``strings`` and ``chunks`` are complete before any event is decoded. Standard input is read
/// once, as it comes: side tables appear before the chunks that need them, so they are current whenever a
/// chunk is handed out. Damage (truncation, checksum failures, bad frames) is recorded in ``damage`` and
/// skipped; only an unusable header throws.
public final class TraceReader: EventSource {
    /// The path given (`-` for standard input).
    public let path: String
    /// The header frame.
    public let header: TraceHeader
    /// The last metadata frame seen.
    public private(set) var metadata = TraceMetadata()
    /// The string table.
    public private(set) var strings: [String] = []
    /// Chunks found by the last skim or decoding pass (with `intact` from decoding once it has run).
    public private(set) var chunks: [ChunkInfo] = []
    /// Damage found so far, in file order of discovery, one entry per place.
    public private(set) var damage: [TraceDamage] = []
    /// The index, when the file has a valid one.
    public private(set) var index: [SeekEntry]?
    /// Records per kind byte, from the last complete decoding pass (all zero before).
    public private(set) var kindCounts = [UInt64](repeating: 0, count: 256)
    /// Skippable frames of unknown types that were skipped.
    public private(set) var unknownFrames = 0
    /// Size of the input in bytes (for standard input: bytes read by the last pass).
    public private(set) var inputBytes: UInt64 = 0
    /// True once a decoding pass ran to the end.
    public private(set) var decoded = false

    private let input: InputBuffer
    private let headerEnd: UInt64
    private var tablesComplete = false
    private var applyTables = true
    private var passes = 0
    private var expectedSequence: UInt32 = 0
    private var recordsSoFar: UInt64 = 0
    private var stringBytes = 0
    private var sawIndex = false
    private var truncatedAtEnd = false
    private var passSkipped = 0
    private var pool: ChunkDecodePool?

    /// Threads that decompress chunks during ``forEachChunk(_:)`` (1: only the calling thread). The default
    /// uses two when the machine has more than one core: the calling thread and one worker.
    public var decodeThreads = min(2, NativeThread.onlineCPUs)
    private var damageOffsets = Set<UInt64>()
    private var decompressor: ChunkFrameDecoder
    private var recordBuffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private var counts = [UInt64](repeating: 0, count: 256)

    /// Opens `path` (or standard input for `-`), reads the header and, for a regular file, skims the rest.
    /// - Throws: ``TraceFormatError``: cannot open, not a trace, truncated or bad header, newer major version.
    public init(path: String) throws {
        self.path = path
        let fd: FileDescriptor
        if path == "-" {
            fd = .standardInput
        } else {
            do {
                fd = try FileDescriptor.open(FilePath(path), .readOnly)
            } catch {
                throw TraceFormatError.io(path: path, operation: "open", message: "\(error)")
            }
        }
        let regular = path != "-" && InputBuffer.isRegularFile(fd)
        input = InputBuffer(fd: fd, path: path, seekable: regular, ownsDescriptor: path != "-")
        decompressor = try ChunkFrameDecoder()
        header = try Self.readHeader(input, path: path)
        headerEnd = input.position
        if regular {
            try runPass(decode: false, filter: { _ in false }) { _ in }
        } else {
            // Take the side tables that precede the first chunk, so metadata is known before events.
            while try peekSideTable() {
                _ = try step(decode: false, filter: { _ in false })
            }
        }
    }

    deinit { recordBuffer.deallocate() }

    // MARK: - Reading

    /// Decodes every chunk in file order and calls `body` with the intact ones. Damaged chunks are
    /// recorded in ``damage`` and skipped. A regular file can be read any number of times; standard
    /// input once.
    public func forEachChunk(_ body: (DecodedChunk) throws -> Void) throws {
        try runPass(decode: true, filter: { _ in true }) { chunk in try body(chunk) }
    }

    /// Like ``forEachChunk(_:)`` but only decompresses chunks for which `include` returns true (from
    /// their headers: time span, sequence, event count). Skipped chunks are not checked for damage.
    public func forEachChunk(where include: (ChunkInfo) -> Bool, _ body: (DecodedChunk) throws -> Void) throws {
        try runPass(decode: true, filter: include) { chunk in try body(chunk) }
    }

    /// Calls `body` with each event's record index (in file order, counting the records of damaged
    /// chunks, so indexes match `zstd -d` output of an intact file) and the event. Unknown kinds are skipped
    /// (see ``unknownKindRecords``).
    public func forEachEvent(_ body: (Int, Event) throws -> Void) throws {
        try forEachChunk { chunk in
            guard let base = chunk.records.baseAddress else { return }
            let first = Int(chunk.info.firstRecord)
            for i in 0..<chunk.count {
                if let e = Event(record: base + i &* Event.recordSize) {
                    try body(first &+ i, e)
                }
            }
        }
    }

    /// Decodes the whole trace (checksums included) without handing anything out; returns true when
    /// nothing is damaged.
    @discardableResult
    public func verify() throws -> Bool {
        try forEachChunk { _ in }
        return damage.isEmpty
    }

    /// The string with id `id`.
    public func string(_ id: UInt32) -> String? {
        Int(exactly: id).flatMap { $0 < strings.count ? strings[$0] : nil }
    }

    /// Records decoded so far whose kind this build does not know (skipped by ``forEachEvent(_:)``).
    public var unknownKindRecords: UInt64 {
        var n: UInt64 = 0
        for raw in 0..<256 where EventKind(rawValue: UInt8(raw)) == nil { n += kindCounts[raw] }
        return n
    }

    /// Records in intact chunks after a decoding pass (before it: records declared by chunk headers).
    public var eventCount: UInt64 {
        decoded ? kindCounts.reduce(0, +) : chunks.reduce(0) { $0 + UInt64($1.header.eventCount) }
    }

    /// Bytes of the records of all chunks found once decoded (events × 56, whatever the chunks' layout).
    public var uncompressedBytes: UInt64 { chunks.reduce(0) { $0 + UInt64($1.header.recordBytes) } }

    /// The smallest and largest timestamps over all chunks, nil when there are no events.
    public var timeSpan: ClosedRange<UInt64>? {
        var lo = UInt64.max
        var hi: UInt64 = 0
        for c in chunks where c.header.eventCount > 0 {
            lo = min(lo, c.header.minTimestamp)
            hi = max(hi, c.header.maxTimestamp)
        }
        return lo <= hi ? lo...hi : nil
    }

    /// True when the file ends with a valid index (the writer finished).
    public var isComplete: Bool { sawIndex }

    /// Whether the events can be read more than once (not standard input).
    public var canReadAgain: Bool { input.seekable }

    // MARK: - Passes

    private enum Step {
        case chunk(DecodedChunk?)
        /// A chunk frame (next in the input, `bytes` long, not read yet) for the decode pool.
        case frame(chunkIndex: Int, bytes: Int)
        case other
        case end
    }

    private func runPass(decode: Bool, filter: (ChunkInfo) -> Bool, _ body: (DecodedChunk) throws -> Void) throws {
        if passes > 0 {
            guard input.seekable else {
                throw TraceFormatError.invalidArgument("\(path): standard input can be read only once")
            }
            try input.seek(to: headerEnd)
        }
        passes += 1
        applyTables = !tablesComplete
        if applyTables && passes > 1 {
            strings = []
            stringBytes = 0
            metadata = TraceMetadata()
        }
        chunks = []
        expectedSequence = 0
        recordsSoFar = 0
        sawIndex = false
        truncatedAtEnd = false
        index = nil
        unknownFrames = 0
        passSkipped = 0
        for i in 0..<256 { counts[i] = 0 }
        // Decoding on this thread reads frames through the window (read ahead far); the decode pool reads
        // them straight into its slots, so the window holds only frame headers (read ahead little).
        input.readAhead = decode && decodeThreads <= 1 ? 4 << 20 : 1 << 16
        if decode && decodeThreads > 1 {
            pool = ChunkDecodePool(workers: decodeThreads - 1, slots: decodeThreads + 1)
        }
        defer {
            pool?.stop()
            pool = nil
        }
        while true {
            switch try step(decode: decode, filter: filter) {
            case .chunk(let c?): try body(c)
            case .chunk(nil), .other: continue
            case .frame(let index, let bytes):
                guard let pool else { continue }
                while !pool.hasFree { try deliverOldest(pool, body) }
                let frameAt = input.position
                let got = try pool.submit(chunks[index], chunkIndex: index, frameBytes: bytes) {
                    try input.read(into: $0)
                }
                if got < bytes {
                    reportTruncatedFrame(chunks[index].header, at: frameAt, through: frameAt + UInt64(got))
                    chunks[index].intact = false
                }
            case .end:
                if let pool {
                    while pool.hasQueued { try deliverOldest(pool, body) }
                }
                inputBytes = input.position
                if !sawIndex && !truncatedAtEnd {
                    report(
                        .missingIndex, at: input.position,
                        "the file ends at byte \(input.position) without the index (the writer did not finish)")
                }
                tablesComplete = true
                damage.sort { $0.offset < $1.offset }
                if decode && passSkipped == 0 {
                    kindCounts = counts
                    decoded = true
                }
                return
            }
        }
    }

    private func report(
        _ kind: TraceDamage.Kind, at offset: UInt64, chunk: UInt32? = nil, lost: UInt64? = nil,
        _ message: String
    ) {
        if kind == .truncated { truncatedAtEnd = true }
        guard damageOffsets.insert(offset).inserted else { return }
        damage.append(TraceDamage(kind: kind, offset: offset, chunk: chunk, lostEvents: lost, message: message))
    }

    /// A chunk's zstd frame starting at `frameAt` is cut off by the end of the input at `end`.
    private func reportTruncatedFrame(_ h: ChunkHeader, at frameAt: UInt64, through end: UInt64) {
        report(
            .truncated, at: frameAt, chunk: h.sequence, lost: UInt64(h.eventCount),
            "the chunk's zstd frame declares \(h.compressedSize) bytes but the file ends at byte \(end), \(end - frameAt) bytes in"
        )
    }

    private func u32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt32.self))
    }

    /// The body limit of a known side-frame tag, nil for unknown tags.
    private static func limit(for tag: UInt32) -> Int? {
        switch tag {
        case DMATFormat.Tag.header: DMATFormat.maxHeaderBytes
        case DMATFormat.Tag.strings: DMATFormat.maxStringFrameBytes
        case DMATFormat.Tag.metadata: DMATFormat.maxMetadataBytes
        case DMATFormat.Tag.chunk: DMATFormat.chunkHeaderBodySize
        default: nil
        }
    }

    private func peekSideTable() throws -> Bool {
        guard try input.fill(12) else { return false }
        let b = input.current
        let tag = u32(b, 8)
        return u32(b, 0) == DMATFormat.sideFrameMagic
            && (tag == DMATFormat.Tag.strings || tag == DMATFormat.Tag.metadata)
    }

    /// Reads the next frame. Chunks are returned (decoded when `decode`); side tables are applied.
    private func step(decode: Bool, filter: (ChunkInfo) -> Bool) throws -> Step {
        let at = input.position
        guard try input.fill(8) else {
            if input.available == 0 { return .end }
            report(.truncated, at: at, "the file ends \(input.available) bytes into a frame header at byte \(at)")
            input.advance(input.available)
            return .end
        }
        let magic = u32(input.current, 0)
        let size = u32(input.current, 4)
        let frameBytes = 8 + UInt64(size)

        if magic == DMATFormat.sideFrameMagic {
            guard size >= 8 else {
                try resync(.garbage, at: at, "side frame declares \(size) bytes, fewer than its tag and CRC")
                return .other
            }
            guard try input.fill(12) else {
                report(.truncated, at: at, "the file ends inside the side frame at byte \(at)")
                input.advance(input.available)
                return .end
            }
            let tag = u32(input.current, 8)
            guard let limit = Self.limit(for: tag) else {
                unknownFrames += 1
                if try !input.skip(frameBytes) {
                    report(.truncated, at: at, "the file ends inside an unknown side frame at byte \(at)")
                    return .end
                }
                return .other
            }
            let isChunk = tag == DMATFormat.Tag.chunk
            let kind: TraceDamage.Kind = isChunk ? .badChunkHeader : .badSideFrame
            guard Int(size) - 8 <= limit, !isChunk || Int(size) - 8 == DMATFormat.chunkHeaderBodySize else {
                try resync(
                    kind, at: at,
                    "\(DMATFormat.tagName(tag)) frame declares \(Int(size) - 8) body bytes (limit \(limit))")
                return .other
            }
            guard try input.fill(Int(frameBytes)) else {
                let present = input.available
                if try resync(kind, at: at, "") { return .other }
                report(
                    .truncated, at: at,
                    "\(DMATFormat.tagName(tag)) frame at byte \(at) declares \(frameBytes) bytes, the file ends after \(present)"
                )
                return .end
            }
            let frame = UnsafeRawBufferPointer(rebasing: input.current[..<Int(frameBytes)])
            var crc = CRC32()
            crc.update(UnsafeRawBufferPointer(rebasing: frame[8..<12]))
            crc.update(UnsafeRawBufferPointer(rebasing: frame[16...]))
            guard crc.value == u32(frame, 12) else {
                try resync(kind, at: at, "\(DMATFormat.tagName(tag)) frame CRC mismatch")
                return .other
            }
            let body = UnsafeRawBufferPointer(rebasing: frame[16...])
            switch tag {
            case DMATFormat.Tag.chunk:
                return try chunk(at: at, body: body, frameBytes: Int(frameBytes), decode: decode, filter: filter)
            case DMATFormat.Tag.strings:
                if applyTables { applyStrings(body, at: at) }
            case DMATFormat.Tag.metadata:
                if applyTables {
                    do {
                        metadata = try BoundedJSON.decode(TraceMetadata.self, from: Data(body))
                    } catch {
                        report(
                            .badSideFrame, at: at,
                            "metadata JSON cannot be decoded: \(DecodingErrorText.describe(error, data: Array(body)))")
                    }
                }
            default:
                unknownFrames += 1  // a second header frame: nothing to do
            }
            input.advance(Int(frameBytes))
            return .other
        }

        if magic == DMATFormat.seekTableMagic {
            guard size >= 9, Int(size) <= DMATFormat.maxIndexBytes else {
                try resync(.badIndex, at: at, "index frame declares \(size) bytes")
                return .other
            }
            guard try input.fill(Int(frameBytes)) else {
                report(.truncated, at: at, "the file ends inside the index frame at byte \(at)")
                input.advance(input.available)
                return .end
            }
            parseIndex(UnsafeRawBufferPointer(rebasing: input.current[8..<Int(frameBytes)]), at: at)
            input.advance(Int(frameBytes))
            return .other
        }

        if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
            unknownFrames += 1
            if try !input.skip(frameBytes) {
                report(.truncated, at: at, "the file ends inside a skippable frame at byte \(at)")
                return .end
            }
            return .other
        }

        if magic == DMATFormat.zstdFrameMagic {
            _ = try input.fill(DMATFormat.maxChunkFrameBytes)
            if let n = ZstdDecompressor.frameSize(input.current) {
                report(.orphanFrame, at: at, "a zstd frame of \(n) bytes without a valid chunk header; skipped")
                input.advance(n)
                return .other
            }
            try resync(.orphanFrame, at: at, "a zstd frame without a chunk header, itself corrupt or truncated")
            return .other
        }

        try resync(.garbage, at: at, String(format32: magic))
        return .other
    }

    /// Handles a chunk header frame (already CRC-checked) at `at` and the zstd frame after it.
    private func chunk(
        at: UInt64, body: UnsafeRawBufferPointer, frameBytes: Int, decode: Bool, filter: (ChunkInfo) -> Bool
    ) throws -> Step {
        var r = ByteReader(body)
        let h = ChunkHeader(
            sequence: r.u32() ?? 0, eventCount: r.u32() ?? 0, uncompressedSize: r.u64() ?? 0,
            compressedSize: r.u64() ?? 0, minTimestamp: r.u64() ?? 0, maxTimestamp: r.u64() ?? 0,
            stringCount: r.u32() ?? 0, flags: r.u32() ?? 0)
        input.advance(frameBytes)
        var problem: String?
        if h.eventCount > DMATFormat.maxChunkEvents {
            problem = "declares \(h.eventCount) events (limit \(DMATFormat.maxChunkEvents))"
        } else if h.uncompressedSize > UInt64(DMATFormat.maxChunkBytes) {
            problem = "declares \(h.uncompressedSize) uncompressed bytes (limit \(DMATFormat.maxChunkBytes))"
        } else if h.layout == .rows && h.uncompressedSize != UInt64(h.recordBytes) {
            problem = "declares \(h.uncompressedSize) bytes for \(h.eventCount) records of \(Event.recordSize)"
        } else if h.layout == .compact && h.uncompressedSize < UInt64(CompactLayout.headerSize) + UInt64(h.eventCount) {
            problem =
                "declares a compact payload of \(h.uncompressedSize) bytes, less than the \(CompactLayout.headerSize) + \(h.eventCount) its header and kinds need"
        } else if h.compressedSize > UInt64(DMATFormat.maxChunkFrameBytes) || h.compressedSize < 9 {
            problem = "declares a compressed size of \(h.compressedSize) bytes (limit \(DMATFormat.maxChunkFrameBytes))"
        }
        if let problem {
            report(.badChunkHeader, at: at, chunk: h.sequence, "chunk header \(problem)")
            return .other
        }
        if h.sequence != expectedSequence {
            let message =
                h.sequence > expectedSequence
                ? "chunk \(h.sequence) follows chunk \(Int(expectedSequence) - 1): chunks \(expectedSequence)...\(h.sequence - 1) are missing"
                : "chunk \(h.sequence) follows chunk \(Int(expectedSequence) - 1): out of order"
            report(.sequenceGap, at: at, chunk: h.sequence, message)
        }
        expectedSequence = h.sequence &+ 1
        let frameAt = input.position
        var info = ChunkInfo(header: h, headerOffset: at, frameOffset: frameAt, firstRecord: recordsSoFar, intact: true)
        recordsSoFar += UInt64(h.eventCount)

        if !decode || !filter(info) {
            if decode { passSkipped += 1 }
            if try !input.skip(h.compressedSize) {
                reportTruncatedFrame(h, at: frameAt, through: input.position)
                info.intact = false
                chunks.append(info)
                return .end
            }
            chunks.append(info)
            return .chunk(nil)
        }

        let csize = Int(h.compressedSize)
        if pool != nil {
            // runPass reads the frame straight into a decode-pool slot, which decodes it; delivery stays in
            // file order.
            chunks.append(info)
            return .frame(chunkIndex: chunks.count - 1, bytes: csize)
        }
        guard try input.fill(csize) else {
            reportTruncatedFrame(h, at: frameAt, through: frameAt + UInt64(input.available))
            input.advance(input.available)
            info.intact = false
            chunks.append(info)
            return .end
        }
        let frame = UnsafeRawBufferPointer(rebasing: input.current[..<csize])
        chunks.append(info)
        let rsize = h.recordBytes
        if recordBuffer.count < rsize {
            recordBuffer.deallocate()
            recordBuffer = .allocate(byteCount: max(rsize, 1 << 20), alignment: 64)
        }
        let result: Result<UnsafeRawBufferPointer, ChunkDecodeError>
        do {
            try decompressor.decode(frame, header: h, into: recordBuffer)
            result = .success(UnsafeRawBufferPointer(rebasing: recordBuffer[..<rsize]))
        } catch {
            result = .failure(error)
        }
        input.advance(csize)
        return .chunk(finish(result, chunkIndex: chunks.count - 1))
    }

    /// Decompresses one chunk frame of exactly `size` record bytes, checking magic and declared size.
    static func decodeChunkFrame(
        _ frame: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer, size: Int,
        decompressor: ZstdDecompressor
    ) throws(ZstdError) {
        guard frame.count >= 4, UInt32(littleEndian: frame.loadUnaligned(as: UInt32.self)) == DMATFormat.zstdFrameMagic
        else {
            throw ZstdError.library(code: 0, name: "no zstd frame magic after the chunk header")
        }
        if let declared = ZstdDecompressor.declaredContentSize(frame), declared != UInt64(size),
            declared <= UInt64(DMATFormat.maxChunkBytes)
        {
            throw ZstdError.sizeMismatch(declared: size, actual: Int(declared))
        }
        _ = try decompressor.decompressFrame(frame, into: out, limit: size)
    }

    /// Adds the kind byte of every record to `counts` (256 entries).
    static func countKinds(_ records: UnsafeRawBufferPointer, into counts: UnsafeMutablePointer<UInt64>) {
        guard let base = records.baseAddress else { return }
        var o = 0
        let n = records.count
        while o < n {
            counts[Int(base.load(fromByteOffset: o, as: UInt8.self))] &+= 1
            o &+= Event.recordSize
        }
    }

    /// Records the outcome of decoding chunk `chunkIndex`: damage, or kind counts and the chunk to hand out.
    /// `kinds`: the chunk's kind counts when the decoding thread already computed them.
    private func finish(
        _ result: Result<UnsafeRawBufferPointer, ChunkDecodeError>, chunkIndex: Int, kinds: UnsafePointer<UInt64>? = nil
    ) -> DecodedChunk? {
        let info = chunks[chunkIndex]
        switch result {
        case .failure(let error):
            report(
                error.isChecksumError ? .checksum : .corruptChunk, at: info.frameOffset, chunk: info.header.sequence,
                lost: UInt64(info.header.eventCount),
                error.isChecksumError ? "content checksum mismatch" : error.description)
            chunks[chunkIndex].intact = false
            return nil
        case .success(let records):
            counts.withUnsafeMutableBufferPointer { c in
                if let kinds {
                    for i in 0..<256 { c[i] &+= kinds[i] }
                } else {
                    Self.countKinds(records, into: c.baseAddress!)
                }
            }
            return DecodedChunk(info: info, records: records)
        }
    }

    private func deliverOldest(_ pool: ChunkDecodePool, _ body: (DecodedChunk) throws -> Void) throws {
        let taken = pool.takeOldest(using: decompressor)
        defer { pool.release(taken.slot) }
        if let chunk = finish(taken.result, chunkIndex: taken.chunkIndex, kinds: taken.kinds) { try body(chunk) }
    }

    private func applyStrings(_ body: UnsafeRawBufferPointer, at: UInt64) {
        var r = ByteReader(body)
        guard let first = r.u32(), let count = r.u32() else {
            report(.badSideFrame, at: at, "string frame too short")
            return
        }
        guard Int(first) == strings.count else {
            report(
                .badSideFrame, at: at, "string frame starts at id \(first) but the table has \(strings.count) strings")
            return
        }
        guard Int(count) <= DMATFormat.maxStrings - strings.count, Int(count) <= r.remaining / 4 else {
            report(
                .badSideFrame, at: at,
                "string frame declares \(count) strings (limit \(DMATFormat.maxStrings) in all, \(r.remaining / 4) fit the frame)"
            )
            return
        }
        var added: [String] = []
        added.reserveCapacity(Int(count))
        var bytes = stringBytes
        for i in 0..<Int(count) {
            guard let n = r.u32(), Int(n) <= DMATFormat.maxStringBytes, let s = r.bytes(Int(n)) else {
                report(
                    .badSideFrame, at: at,
                    "string \(Int(first) + i) runs past its frame or exceeds \(DMATFormat.maxStringBytes) bytes")
                return
            }
            bytes += s.count
            guard bytes <= DMATFormat.maxStringTableBytes else {
                report(.badSideFrame, at: at, "string table exceeds \(DMATFormat.maxStringTableBytes) bytes")
                return
            }
            added.append(String(decoding: s, as: UTF8.self))
        }
        strings += added
        stringBytes = bytes
    }

    private func parseIndex(_ payload: UnsafeRawBufferPointer, at: UInt64) {
        let n = payload.count
        let frames = u32(payload, n - 9)
        let descriptor = payload[n - 5]
        guard u32(payload, n - 4) == DMATFormat.seekableFooterMagic else {
            report(.badIndex, at: at, "seek table footer magic missing")
            return
        }
        let entrySize = descriptor & 0x80 != 0 ? 12 : 8
        guard UInt64(frames) * UInt64(entrySize) + 9 == UInt64(n) else {
            report(.badIndex, at: at, "seek table declares \(frames) entries but holds \(n) bytes")
            return
        }
        var r = ByteReader(payload)
        var entries: [SeekEntry] = []
        entries.reserveCapacity(Int(frames))
        for _ in 0..<Int(frames) {
            let c = r.u32() ?? 0
            let d = r.u32() ?? 0
            let x = entrySize == 12 ? r.u32() : nil
            entries.append(SeekEntry(compressedSize: c, decompressedSize: d, checksum: x))
        }
        sawIndex = true
        // Check the entries against the chunks found: entry k ends where chunk k's frame ends.
        var end: UInt64 = 0
        var k = 0
        for e in entries {
            end += UInt64(e.compressedSize)
            if e.decompressedSize == 0 && k == chunks.count { continue }
            guard k < chunks.count else {
                report(.badIndex, at: at, "the index lists more chunks than the file holds (\(chunks.count))")
                return
            }
            let c = chunks[k]
            guard c.frameOffset + c.header.compressedSize == end,
                UInt64(e.decompressedSize) == c.header.uncompressedSize
            else {
                report(
                    .badIndex, at: at,
                    "index entry \(k) disagrees with chunk \(c.header.sequence) at byte \(c.headerOffset)")
                return
            }
            k += 1
        }
        guard k == chunks.count, end == at else {
            report(.badIndex, at: at, "the index covers \(k) of \(chunks.count) chunks and \(end) of \(at) bytes")
            return
        }
        index = entries
    }

    /// Reports damage at `at` and searches forward for the next valid frame. Returns false when none was
    /// found before the end (everything was consumed). An empty message means: report only if resynced.
    @discardableResult
    private func resync(_ kind: TraceDamage.Kind, at: UInt64, _ message: String) throws -> Bool {
        input.advance(min(1, input.available))
        while true {
            guard try input.fill(16) else {
                if !message.isEmpty {
                    report(
                        kind, at: at,
                        "\(message); no valid frame follows (file ends at byte \(input.position + UInt64(input.available)))"
                    )
                }
                input.advance(input.available)
                return false
            }
            let b = input.current
            var k = 0
            var found = false
            while k + 4 <= b.count {
                if b[k + 1] == 0x2A && b[k + 2] == 0x4D && b[k + 3] == 0x18 && (b[k] == 0x5D || b[k] == 0x5E) {
                    found = true
                    break
                }
                k += 1
            }
            if !found {
                input.advance(max(0, b.count - 3))
                _ = try input.fill(input.available + 1)
                continue
            }
            input.advance(k)
            if try candidateIsValid() {
                let resumed = input.position
                report(
                    kind, at: at,
                    (message.isEmpty ? "\(kind.rawValue) frame" : message)
                        + "; skipped \(resumed - at) bytes to the next valid frame at byte \(resumed)")
                return true
            }
            input.advance(1)
        }
    }

    private func candidateIsValid() throws -> Bool {
        guard try input.fill(16) else { return false }
        let b = input.current
        let magic = u32(b, 0)
        let size = u32(b, 4)
        if magic == DMATFormat.seekTableMagic {
            guard size >= 9, Int(size) <= DMATFormat.maxIndexBytes, try input.fill(8 + Int(size)) else { return false }
            return u32(input.current, 8 + Int(size) - 4) == DMATFormat.seekableFooterMagic
        }
        guard size >= 8, let limit = Self.limit(for: u32(b, 8)), Int(size) - 8 <= limit,
            try input.fill(8 + Int(size))
        else { return false }
        let f = input.current
        var crc = CRC32()
        crc.update(UnsafeRawBufferPointer(rebasing: f[8..<12]))
        crc.update(UnsafeRawBufferPointer(rebasing: f[16..<(8 + Int(size))]))
        return crc.value == u32(f, 12)
    }

    // MARK: - Header

    private static func readHeader(_ input: InputBuffer, path: String) throws -> TraceHeader {
        _ = try input.fill(18)
        let b = input.current
        if b.isEmpty { throw TraceFormatError.notATrace(path: path, reason: "the input is empty") }
        let magicBytes: [UInt8] = [0x5D, 0x2A, 0x4D, 0x18]
        let tagBytes: [UInt8] = Array("DMAT".utf8)
        for i in 0..<min(b.count, 12) where i < 4 || i >= 8 {
            let expected = i < 4 ? magicBytes[i] : tagBytes[i - 8]
            if b[i] != expected {
                throw TraceFormatError.notATrace(
                    path: path, reason: "byte \(i) is \(Hex.prefixed(b[i])), a .dmat starts with a dmat header frame")
            }
        }
        if b.count >= 18 {
            // The major version is checked before anything else a newer major might have changed.
            let major = UInt16(littleEndian: b.loadUnaligned(fromByteOffset: 16, as: UInt16.self))
            if major > DMATFormat.majorVersion {
                throw TraceFormatError.newerMajorVersion(path: path, found: major, supported: DMATFormat.majorVersion)
            }
        }
        guard b.count >= 16 else {
            throw TraceFormatError.truncatedHeader(path: path, offset: UInt64(b.count), needed: 16)
        }
        let size = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        guard size >= 8 + 16, Int(size) - 8 <= DMATFormat.maxHeaderBytes else {
            throw TraceFormatError.badHeader(path: path, offset: 0, reason: "declares \(size) bytes")
        }
        guard try input.fill(8 + Int(size)) else {
            throw TraceFormatError.truncatedHeader(
                path: path, offset: UInt64(input.available), needed: 8 + UInt64(size))
        }
        let f = UnsafeRawBufferPointer(rebasing: input.current[..<(8 + Int(size))])
        var crc = CRC32()
        crc.update(UnsafeRawBufferPointer(rebasing: f[8..<12]))
        crc.update(UnsafeRawBufferPointer(rebasing: f[16...]))
        guard crc.value == UInt32(littleEndian: f.loadUnaligned(fromByteOffset: 12, as: UInt32.self)) else {
            throw TraceFormatError.badHeader(path: path, offset: 0, reason: "CRC mismatch")
        }
        var r = ByteReader(UnsafeRawBufferPointer(rebasing: f[16...]))
        let major = r.u16() ?? 0
        let minor = r.u16() ?? 0
        let recordSize = r.u16() ?? 0
        let flags = r.u16() ?? 0
        let chunkEvents = r.u32() ?? 0
        let schemaLength = r.u32() ?? 0
        guard major >= 1 else { throw TraceFormatError.badHeader(path: path, offset: 16, reason: "major version 0") }
        guard Int(recordSize) == DMATFormat.recordSize else {
            throw TraceFormatError.badHeader(path: path, offset: 20, reason: "record size \(recordSize), expected 56")
        }
        guard let schemaBytes = r.bytes(Int(schemaLength)) else {
            throw TraceFormatError.badHeader(
                path: path, offset: 28, reason: "schema length \(schemaLength) runs past the frame")
        }
        let schema: TraceSchema
        do {
            schema = try BoundedJSON.decode(TraceSchema.self, from: Data(schemaBytes))
        } catch {
            throw TraceFormatError.badHeader(path: path, offset: 32, reason: "schema section: \(error)")
        }
        input.advance(8 + Int(size))
        return TraceHeader(
            major: major, minor: minor, recordSize: recordSize, flags: flags,
            chunkEvents: chunkEvents, schema: schema)
    }
}

extension String {
    /// "unknown frame magic 0x…" for garbage reports.
    init(format32 magic: UInt32) {
        self = "no frame starts here (bytes read as magic \(Hex.prefixed(magic)))"
    }
}
