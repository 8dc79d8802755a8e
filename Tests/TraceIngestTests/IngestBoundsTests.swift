import CZlib
import Foundation
import Testing
import TraceFormat
@testable import TraceIngest

/// Adversarial ingest inputs: decompression bombs and absurd sizes are refused fast, with the file and the
/// compressed byte offset in the message, before memory grows past the limits.
@Suite struct IngestBoundsTests {
    /// A zstd frame of `blocks` RLE blocks of 128 KiB each (4 bytes per block: ratio 32768:1).
    static func zstdBomb(blocks: Int, byte: UInt8 = 0x41) -> [UInt8] {
        // Magic; frame header descriptor 0 (no content size, no checksum); window descriptor 2^17.
        var out: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38]
        for i in 0..<blocks {
            let last: UInt32 = i == blocks - 1 ? 1 : 0
            let header = UInt32(128 * 1024) << 3 | 1 << 1 | last  // Block_Size, RLE, Last_Block
            out += [UInt8(header & 0xFF), UInt8(header >> 8 & 0xFF), UInt8(header >> 16 & 0xFF), byte]
        }
        return out
    }

    /// A gzip member holding `bytes` copies of `byte`, compressed at level 9 (~1030:1).
    static func gzipBomb(bytes: Int, byte: UInt8 = 0x41) throws -> [UInt8] {
        var strm = z_stream()
        #expect(
            deflateInit2_(
                &strm, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY, zlibVersion(),
                Int32(MemoryLayout<z_stream>.size)) == Z_OK)
        defer { deflateEnd(&strm) }
        var input = [UInt8](repeating: byte, count: 1 << 20)
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var left = bytes
        while true {
            let n = min(left, input.count)
            left -= n
            let flush = left == 0 ? Z_FINISH : Z_NO_FLUSH
            try input.withUnsafeMutableBufferPointer { inp in
                strm.next_in = inp.baseAddress
                strm.avail_in = UInt32(n)
                repeat {
                    try chunk.withUnsafeMutableBufferPointer { o in
                        strm.next_out = o.baseAddress
                        strm.avail_out = UInt32(o.count)
                        let rc = deflate(&strm, flush)
                        guard rc != Z_STREAM_ERROR else {
                            throw IngestError.unreadable(path: "gzip", reason: "deflate")
                        }
                        out += o[0..<(o.count - Int(strm.avail_out))]
                    }
                } while strm.avail_out == 0
            }
            if left == 0 { break }
        }
        return out
    }

    /// Runs `importer` over `bytes`; returns the error it threw and the seconds it took.
    static func refusal<I: Importer>(_ importer: I, _ bytes: [UInt8], path: String) -> (IngestError?, Double) {
        var importer = importer
        var sink = EventBuffer()
        var d = IngestDiagnostics()
        let clock = ContinuousClock()
        var failure: IngestError?
        let t = clock.measure {
            do throws(IngestError) {
                try importer.run(
                    IngestInput(path: path, bytes: bytes), source: 0, clock: 0, into: &sink, diagnostics: &d)
            } catch {
                failure = error
            }
        }
        return (failure, Double(t.components.seconds) + Double(t.components.attoseconds) / 1e18)
    }

    /// `seconds`: the wall-time bound (text importers parse the 64 MiB of lines before the floor: ~3 s of CPU
    /// in a debug build, far more wall time on a loaded machine).
    static func expectBombRefused(
        _ error: IngestError?, path: String, format: String, seconds: Double, limit maxSeconds: Double = 20
    ) {
        guard case let .limitExceeded(p, offset, what, value, limit)? = error else {
            Issue.record("\(path): expected limitExceeded, got \(String(describing: error))")
            return
        }
        #expect(p == path)
        #expect(what.contains("\(format) data expanding more than 1000×"))
        #expect(value > DecompressionLimit.floorBytes)
        #expect(value <= DecompressionLimit.floorBytes + (2 << 20), "stopped within 2 MiB of the floor: \(value)")
        #expect(limit == DecompressionLimit.floorBytes)
        #expect(offset > 0 && offset < 64 * 1024, "the compressed offset: \(offset)")
        #expect(error!.description.hasPrefix("\(path): byte \(offset): \(format) data expanding"))
        #expect(seconds < maxSeconds, "\(path) took \(seconds) s")
    }

    /// A zstd frame of RLE blocks making `lines` lines of 7 × 128 KiB of `A` (under the 1 MiB line limit)
    /// each ended by a newline: 32 bytes per 896 KiB line, a decompression bomb made of valid lines.
    static func lineBombFrame(lines: Int) -> [UInt8] {
        var out: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38]
        func block(_ size: UInt32, _ byte: UInt8, last: Bool) {
            let h = size << 3 | 1 << 1 | (last ? 1 : 0)
            out += [UInt8(h & 0xFF), UInt8(h >> 8 & 0xFF), UInt8(h >> 16 & 0xFF), byte]
        }
        for l in 0..<lines {
            for _ in 0..<7 { block(128 * 1024, 0x41, last: false) }
            block(1, 0x0A, last: l == lines - 1)
        }
        return out
    }

    // 8192 blocks: 32 KiB that would expand to 1 GiB.
    static let bomb = zstdBomb(blocks: 8192)

    @Test func zstdBombIsRefusedByStreamingTextImporters() {
        #expect(Self.bomb.count == 6 + 8192 * 4)
        // Lines under the line limit (a bomb without newlines is one line, refused by the line limit first:
        // IngestInputTests).
        let lines = Self.lineBombFrame(lines: 1170)
        let (e1, t1) = Self.refusal(FtraceTextImporter(), lines, path: "bomb-ftrace.zst")
        Self.expectBombRefused(e1, path: "bomb-ftrace.zst", format: "zstd", seconds: t1, limit: 120)
        let (e2, t2) = Self.refusal(DmesgImporter(), lines, path: "bomb-dmesg.zst")
        Self.expectBombRefused(e2, path: "bomb-dmesg.zst", format: "zstd", seconds: t2, limit: 120)
        let (e3, t3) = Self.refusal(QEMULogImporter(), lines, path: "bomb-qemu.log.zst")
        Self.expectBombRefused(e3, path: "bomb-qemu.log.zst", format: "zstd", seconds: t3, limit: 120)
    }

    @Test func zstdBombIsRefusedByWholeFileImporters() {
        let (e1, t1) = Self.refusal(TraceDatImporter(), Self.bomb, path: "bomb.dat.zst")
        Self.expectBombRefused(e1, path: "bomb.dat.zst", format: "zstd", seconds: t1)
        let (e2, t2) = Self.refusal(SimpletraceImporter(traceEvents: .builtin), Self.bomb, path: "bomb-simpletrace.zst")
        Self.expectBombRefused(e2, path: "bomb-simpletrace.zst", format: "zstd", seconds: t2)
    }

    @Test func gzipBombIsRefused() throws {
        // 256 MiB of one byte: ~250 KiB of gzip, a ratio just over 1000:1.
        let gz = try Self.gzipBomb(bytes: 256 << 20)
        #expect(gz.count < 300 * 1024)
        let (e, t) = Self.refusal(TraceDatImporter(), gz, path: "bomb.dat.gz")
        guard case let .limitExceeded(p, offset, what, value, _)? = e else {
            Issue.record("expected limitExceeded, got \(String(describing: e))")
            return
        }
        #expect(p == "bomb.dat.gz")
        #expect(what.hasPrefix("gzip data expanding more than 1000×"))
        #expect(value > DecompressionLimit.floorBytes && value < 80 << 20)
        #expect(offset > 0 && offset < UInt64(gz.count))
        #expect(t < 20)
    }

    @Test func compressedInputBelowTheFloorIsRead() throws {
        // 16 MiB of 'A' (one over-long line, cut and reported) expands 32768× but stays under the floor.
        let small = Self.zstdBomb(blocks: 128)
        let input = IngestInput(path: "small.zst", bytes: small)
        let all = try input.readAll()
        #expect(all.count == 16 << 20)
        #expect(input.compression == .zstd)
    }

    @Test func readAllLimitIsCheckedBeforeHoldingMore() {
        let input = IngestInput(path: "big.zst", bytes: Self.zstdBomb(blocks: 64))  // 8 MiB
        #expect(
            throws: IngestError.limitExceeded(
                path: "big.zst", offset: 5 << 20, what: "decompressed size",
                value: 5 << 20, limit: 4 << 20)
        ) {
            _ = try input.readAll(limit: 4 << 20)
        }
    }

    @Test func embeddedZstdFramesCannotReserveMoreThanTheyCanHold() throws {
        // trace.dat v7 sections and flyrecord chunks declare their size; 4 KiB of RLE blocks can hold
        // at most ~32 MiB, so a claim of 512 MiB is refused before anything is allocated.
        let frame = Self.zstdBomb(blocks: 1024)  // really 128 MiB
        let refused = frame.withUnsafeBytes { ZstdFrameDecoder.decompress($0, expectedSize: 512 << 20) }
        guard case .failure(let f) = refused else {
            Issue.record("a 4 KiB frame was allowed to declare 512 MiB")
            return
        }
        #expect(f.reason == "4102 compressed bytes cannot hold the 536870912 bytes declared")
        // A frame whose header declares more than the caller expects is refused the same way.
        let declared: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x20, 200, 0x01, 0x00, 0x00, 0x41]  // FCS 200, one RLE block
        guard case .failure(let g) = declared.withUnsafeBytes({ ZstdFrameDecoder.decompress($0, expectedSize: 100) })
        else {
            Issue.record("frame declaring 200 bytes accepted for 100")
            return
        }
        #expect(g.reason == "zstd frame declares 200 bytes, 100 expected")
        // What a frame can hold and declares is decoded.
        let ok: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x20, 100, 0x23, 0x03, 0x00, 0x41]  // FCS 100, last RLE block of 100
        guard case .success(let out) = ok.withUnsafeBytes({ ZstdFrameDecoder.decompress($0, expectedSize: 100) }) else {
            Issue.record("valid RLE frame refused")
            return
        }
        #expect(out == [UInt8](repeating: 0x41, count: 100))
    }

    /// Found by the dmesg fuzz target (Tests/Fuzz/dmesg/crashes/crash-8a7c…): a group number above
    /// Int.max trapped converting to Int.
    @Test func iommuGroupNumberBeyondIntIsAMalformedLine() throws {
        let text = "[    1.000000] pci 0000:00:02.0: Adding to iommu group 18446744073709551615\n"
        var importer = DmesgImporter()
        var sink = EventBuffer()
        var d = IngestDiagnostics()
        try importer.run(
            IngestInput(path: "dmesg.txt", bytes: Array(text.utf8)), source: 0, clock: 0, into: &sink, diagnostics: &d)
        #expect(d.skipped == 1)
        #expect(d.problems.first?.description.hasPrefix("dmesg.txt:1: malformed iommu group line") == true)
        #expect(sink.events.isEmpty)
    }
}

/// Lost-event counts come from the input and saturate instead of trapping (a simpletrace "dropped" record of
/// 2^64 - 1 events, found by fuzzing: Tests/Fuzz/simpletrace/crashes/); ordinary counts add up.
@Test func lostEventCountsSaturate() {
    var d = IngestDiagnostics()
    d.addLost(UInt64.max)
    d.addLost(UInt64.max)
    #expect(d.lostEvents == Int.max)
    var e = IngestDiagnostics()
    e.addLost(3)
    e.addLost(UInt8(4))
    #expect(e.lostEvents == 7)
    e.merge(d)
    #expect(e.lostEvents == Int.max)
}
