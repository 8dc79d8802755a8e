import TraceFormat

/// Walks the per-CPU ring-buffer pages of a trace.dat: decompresses flyrecord chunks, applies the event header
/// rules (type_len/time_delta, time extend, absolute timestamps, padding) and the page header (timestamp,
/// commit with its missed-events flags), and returns each record's time, place and bytes.
///
/// Damage inside the data (a record that overruns its page, a chunk that does not decompress) is reported in
/// the diagnostics with a byte offset and the walk goes on with the next page or CPU: a partial result.
struct TraceDatRingBuffer {
    /// One CPU's data, decompressed, with what is needed to give provenance.
    struct Stream {
        var cpu: Int
        /// Where the CPU's data lies in ``Streams/data``.
        var range: Range<Int>
        /// For uncompressed data: the file offset of the stream's first byte.
        var fileBase: UInt64?
        /// For compressed data: start of each chunk in the stream and the file offset of its chunk header.
        var chunkStarts: [Int] = []
        var chunkPositions: [UInt64] = []
    }

    /// Every CPU's data, one after the other in one buffer (one allocation, read through one pointer).
    struct Streams {
        var data: [UInt8] = []
        var list: [Stream] = []
    }

    /// One record (or a missed-events marker) in time order material.
    struct Record {
        var timestamp: UInt64
        /// Index into the streams.
        var stream: Int32
        /// Bytes of the record (at most a page).
        var length: UInt32
        /// Offset of the record data (after the event header) in ``Streams/data``.
        var offset: Int
        /// Byte offset in the file: the event header (uncompressed) or the chunk header (compressed).
        var position: UInt64
        /// -1 for an event record; otherwise a missed-events marker with this count (0 = count unknown).
        var missed: Int64
        /// Input order, for a deterministic stable sort.
        var sequence: Int
    }

    let file: TraceDatFile
    let path: String

    /// Upper bound on all decompressed CPU data together.
    static let maxTotalData = 8 << 30

    /// Loads every CPU's data from `bytes` (the whole file).
    func loadStreams(_ bytes: UnsafeRawBufferPointer, diagnostics: inout IngestDiagnostics) -> Streams {
        var streams = Streams()
        streams.data.reserveCapacity(reservation(bytes))
        let zstd = try? ZstdDecompressor()  // one context for every chunk (nil: each chunk tries its own)
        var total = 0
        for cpu in file.cpus where cpu.size > 0 {
            guard let off = Int(exactly: cpu.offset), off <= bytes.count else {
                diagnostics.skip(
                    .init(
                        file: path, position: cpu.offset, isByteOffset: true,
                        message: "CPU \(cpu.cpu) data starts beyond the end of the file (\(bytes.count) bytes)"))
                continue
            }
            var size = Int(clamping: cpu.size)
            if size > bytes.count - off && !file.cpuDataCompressed {
                diagnostics.skip(
                    .init(
                        file: path, position: UInt64(bytes.count), isByteOffset: true,
                        message:
                            "truncated: CPU \(cpu.cpu) data declares \(cpu.size) bytes, \(bytes.count - off) present; reading what is there"
                    ))
                size = bytes.count - off
            }
            if !file.cpuDataCompressed {
                guard total <= Self.maxTotalData - size else { break }
                total += size
                let start = streams.data.count
                streams.data.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[off..<(off + size)]))
                streams.list.append(Stream(cpu: cpu.cpu, range: start..<streams.data.count, fileBase: UInt64(off)))
                continue
            }
            let start = streams.data.count
            var s = Stream(cpu: cpu.cpu, range: start..<start, fileBase: nil)
            // The chunk table is bounded by the file, not by the declared size: trace-cmd 3.1.6 declares 4
            // bytes less than the table occupies (the u32 chunk count is not counted).
            let region = BinaryReader(
                UnsafeRawBufferPointer(rebasing: bytes[off...]),
                bigEndian: file.bigEndian, path: path, base: UInt64(off))
            do throws(IngestError) {
                let chunks = Int(try region.u32(0, "chunk count"))
                var q = 4
                for _ in 0..<chunks {
                    let csize = Int(try region.u32(q, "chunk compressed size"))
                    let usize = Int(try region.u32(q + 4, "chunk size"))
                    guard usize <= TraceDatFile.Limits.maxChunk, total <= Self.maxTotalData - usize else {
                        throw IngestError.limitExceeded(
                            path: path, offset: region.position(q + 4), what: "flyrecord chunk size",
                            value: UInt64(usize), limit: UInt64(TraceDatFile.Limits.maxChunk))
                    }
                    // As for compressed inputs: past 64 MiB, at most 1000× the file's size in all (a bomb).
                    let expansion = max(
                        DecompressionLimit.floorBytes,
                        UInt64(bytes.count).multipliedReportingOverflow(by: DecompressionLimit.maxRatio).partialValue)
                    guard UInt64(total + usize) <= expansion else {
                        throw IngestError.limitExceeded(
                            path: path, offset: region.position(q + 4),
                            what:
                                "flyrecord data expanding more than \(DecompressionLimit.maxRatio)× the file (a decompression bomb?): decompressed size",
                            value: UInt64(total + usize), limit: expansion)
                    }
                    let frame = try region.slice(q + 8, csize, "flyrecord chunk")
                    let chunkStart = streams.data.count - start
                    switch ZstdFrameDecoder.decompress(
                        frame, expectedSize: usize, appendingTo: &streams.data, using: zstd)
                    {
                    case .success:
                        s.chunkStarts.append(chunkStart)
                        s.chunkPositions.append(region.position(q))
                        total += usize
                    case .failure(let f):
                        throw IngestError.badFormat(
                            path: path, offset: region.position(q),
                            reason: "flyrecord chunk of CPU \(cpu.cpu): \(f.reason)")
                    }
                    q += 8 + csize
                }
            } catch {
                diagnostics.skip(
                    .init(
                        file: path, position: errorOffset(error), isByteOffset: true,
                        message: "\(error); events after this point on CPU \(cpu.cpu) are lost"))
            }
            s.range = start..<streams.data.count
            streams.list.append(s)
        }
        return streams
    }

    /// The bytes `loadStreams` will hold, as the CPU sections and chunk tables declare them (reserved up front:
    /// the buffer does not grow and copy chunk by chunk). Only a capacity: at most 64 times the file, and no
    /// chunk counts for more than its compressed bytes could give, so a damaged or hostile table reserves
    /// little (the limits that refuse data are `loadStreams`'s).
    private func reservation(_ bytes: UnsafeRawBufferPointer) -> Int {
        let r = BinaryReader(bytes, bigEndian: file.bigEndian, path: path)
        let limit = min(Self.maxTotalData, bytes.count.multipliedReportingOverflow(by: 64).partialValue)
        var total = 0
        for cpu in file.cpus where cpu.size > 0 {
            guard let off = Int(exactly: cpu.offset), off <= bytes.count else { continue }
            if !file.cpuDataCompressed {
                total += min(Int(clamping: cpu.size), bytes.count - off)
            } else if let n = try? r.u32(off) {
                var q = off + 4
                for _ in 0..<n {
                    guard let csize = try? r.u32(q), let usize = try? r.u32(q + 4), r.has(q + 8, Int(csize)) else {
                        break
                    }
                    total += min(Int(usize), (Int(csize) + 4) * 32 * 1024)
                    guard total < limit else { return limit }
                    q += 8 + Int(csize)
                }
            }
            guard total < limit else { return limit }
        }
        return total
    }

    private func errorOffset(_ e: IngestError) -> UInt64 {
        switch e {
        case let .badFormat(_, o, _), let .truncated(_, o, _), let .limitExceeded(_, o, _, _, _): o
        default: 0
        }
    }

    /// Walks all pages of all streams; records come per stream in page order.
    func records(_ streams: Streams, diagnostics: inout IngestDiagnostics) -> [Record] {
        var out: [Record] = []
        // One record per 32 bytes (an iommu map or unmap event with its header is 36): a guess, which saves
        // the growing array's copies when right.
        out.reserveCapacity(streams.data.count / 32)
        streams.data.withUnsafeBytes { all in
            for (index, s) in streams.list.enumerated() {
                walk(
                    UnsafeRawBufferPointer(rebasing: all[s.range]), stream: s, index: index, into: &out,
                    diagnostics: &diagnostics)
            }
        }
        return out
    }

    private func walk(
        _ bytes: UnsafeRawBufferPointer, stream s: Stream, index: Int, into out: inout [Record],
        diagnostics: inout IngestDiagnostics
    ) {
        let r = BinaryReader(bytes, bigEndian: file.bigEndian, path: path)
        let layout = file.page
        let pageSize = file.pageSize
        var chunk = 0
        func position(_ offset: Int) -> UInt64 {
            if let base = s.fileBase { return base &+ UInt64(offset) }
            while chunk + 1 < s.chunkStarts.count && s.chunkStarts[chunk + 1] <= offset { chunk += 1 }
            return chunk < s.chunkPositions.count ? s.chunkPositions[chunk] : 0
        }
        func problem(_ offset: Int, _ message: String) {
            diagnostics.skip(
                .init(
                    file: path, position: position(offset), isByteOffset: true,
                    message: "CPU \(s.cpu): \(message)"))
        }
        var pageStart = 0
        while pageStart < bytes.count {
            defer { pageStart += pageSize }
            guard r.has(pageStart, layout.dataOffset),
                let pageTime = try? r.u64(pageStart + layout.timestampOffset),
                let commitRaw = try? r.integer(pageStart + layout.commitOffset, size: layout.commitSize, signed: false)
            else {
                problem(pageStart, "truncated ring-buffer page header")
                break
            }
            let missedEvents = commitRaw & (1 << 31) != 0
            let missedStored = commitRaw & (1 << 30) != 0
            var commit = Int(commitRaw & ((1 << 27) - 1))
            let dataStart = pageStart + layout.dataOffset
            let pageLimit = min(pageStart + pageSize, bytes.count)
            if commit > pageLimit - dataStart {
                problem(pageStart, "page commit \(commit) exceeds the page; reading to the page end")
                commit = max(0, pageLimit - dataStart)
            }
            let pageEnd = dataStart + commit
            if missedEvents {
                var count: Int64 = 0
                if missedStored, let n = try? r.integer(pageEnd, size: file.longSize, signed: false) {
                    count = Int64(clamping: n)
                }
                out.append(
                    Record(
                        timestamp: pageTime, stream: Int32(index), length: 0, offset: s.range.lowerBound + pageStart,
                        position: position(pageStart), missed: count, sequence: out.count))
            }
            var ts = pageTime
            var p = dataStart
            while p < pageEnd {
                guard pageEnd - p >= 4 else {
                    problem(p, "\(pageEnd - p) stray bytes at the end of a page")
                    break
                }
                let header = r.u32Unchecked(p)
                let typeLen: UInt32
                let delta: UInt64
                if file.bigEndian {
                    typeLen = header >> 27
                    delta = UInt64(header & ((1 << 27) - 1))
                } else {
                    typeLen = header & 0x1F
                    delta = UInt64(header >> 5)
                }
                let headerAt = p
                p += 4
                var length: Int
                switch typeLen {
                case 29:  // padding; delta 0 means the rest of the page is unused
                    if delta == 0 { p = pageEnd; continue }
                    guard let n = try? r.u32(p), Int(n) <= pageEnd - p else {
                        problem(headerAt, "padding event overruns the page")
                        p = pageEnd
                        continue
                    }
                    ts &+= delta
                    p += Int(n)
                    continue
                case 30:  // time extend
                    guard let ext = try? r.u32(p), p + 4 <= pageEnd else {
                        problem(headerAt, "time-extend event overruns the page")
                        p = pageEnd
                        continue
                    }
                    p += 4
                    ts &+= (UInt64(ext) << 27) &+ delta
                    continue
                case 31:  // absolute timestamp
                    guard let ext = try? r.u32(p), p + 4 <= pageEnd else {
                        problem(headerAt, "timestamp event overruns the page")
                        p = pageEnd
                        continue
                    }
                    p += 4
                    ts = (UInt64(ext) << 27) | delta
                    continue
                case 0:
                    guard let n = try? r.u32(p), n >= 4 else {
                        problem(headerAt, "bad length of a large event")
                        p = pageEnd
                        continue
                    }
                    p += 4
                    length = Int(n) - 4
                default:
                    length = Int(typeLen) * 4
                }
                ts &+= delta
                guard length <= pageEnd - p else {
                    problem(headerAt, "event of \(length) bytes overruns the page commit")
                    p = pageEnd
                    continue
                }
                out.append(
                    Record(
                        timestamp: ts, stream: Int32(index), length: UInt32(length), offset: s.range.lowerBound + p,
                        position: position(headerAt), missed: -1, sequence: out.count))
                p += (length + 3) & ~3
            }
        }
    }
}
