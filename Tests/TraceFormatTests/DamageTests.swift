import DMATraceTestSupport
import Foundation
import Testing
@testable import TraceFormat

/// Truncation, bit flips, absurd sizes, unknown kinds and versions.
@Suite struct DamageTests {
    /// 50 events in chunks of 8: 7 chunks (the last one short).
    static func smallTrace(_ dir: URL) throws -> (
        path: String, bytes: [UInt8], buffer: EventBuffer, chunks: [ChunkInfo]
    ) {
        let path = dir.appendingPathComponent("small.dmat").path
        let buf = Fixtures.randomTrace(seed: 42, count: 50)
        try Fixtures.write(buf, to: path, chunkEvents: 8)
        let r = try TraceReader(path: path)
        return (path, [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), buf, r.chunks)
    }

    @Test(.tags(.slow)) func truncationAtEveryOffset() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, bytes, buf, chunks) = try Self.smallTrace(dir)
        #expect(chunks.count == 7)
        let cut = dir.appendingPathComponent("cut.dmat").path
        let headerEnd = Int(chunks[0].headerOffset) - 0  // header + metadata + strings precede chunk 0
        var sawHeaderError = 0
        try Data(bytes).write(to: URL(fileURLWithPath: cut))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: cut))
        defer { try? handle.close() }
        // Longest cut first, so each cut is one ftruncate of the same file.
        for length in (1..<bytes.count).reversed() {
            try handle.truncate(atOffset: UInt64(length))
            let reader: TraceReader
            do {
                reader = try TraceReader(path: cut)
            } catch let e as TraceFormatError {
                // Only a cut inside the header frame stops reading; it is reported as damage with its offset.
                #expect(e.isDamage, "length \(length): \(e)")
                #expect(e.description.contains("at byte"))
                sawHeaderError += 1
                continue
            }
            var events: [Event] = []
            try reader.forEachEvent { _, e in events.append(e) }
            let complete = chunks.filter { Int($0.frameOffset + $0.header.compressedSize) <= length }
            let expected = complete.reduce(0) { $0 + Int($1.header.eventCount) }
            #expect(events == Array(buf.events.prefix(expected)), "length \(length)")
            #expect(!reader.damage.isEmpty, "length \(length) must report damage")
            #expect(reader.damage.allSatisfy { $0.description.contains("byte ") })
            #expect(Int(reader.damage.map(\.offset).max() ?? 0) <= length)
        }
        #expect(sawHeaderError > 0 && sawHeaderError < headerEnd)
    }

    /// The decode pool reads frames straight into its slots, the single-threaded reader through its window:
    /// a cut inside a frame must read the same and be reported the same by both.
    @Test(arguments: [0, 1, 57] as [Int])
    func cutInsideAFrameReadsTheSameWithAndWithoutTheDecodePool(into: Int) throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, bytes, buf, chunks) = try Self.smallTrace(dir)
        let victim = chunks[4]
        let length = Int(victim.frameOffset) + min(into, Int(victim.header.compressedSize) - 1)
        let cut = dir.appendingPathComponent("cut.dmat").path
        try Data(bytes[..<length]).write(to: URL(fileURLWithPath: cut))
        var seen: [[TraceDamage]] = []
        for threads in [1, 3] {
            let reader = try TraceReader(path: cut)
            reader.decodeThreads = threads
            var events: [Event] = []
            try reader.forEachEvent { _, e in events.append(e) }
            #expect(events == Array(buf.events.prefix(32)), "\(threads) threads")
            #expect(reader.chunks.count == 5 && !reader.chunks[4].intact)
            seen.append(reader.damage)
        }
        let got = length - Int(victim.frameOffset)
        #expect(
            seen[0] == [
                TraceDamage(
                    kind: .truncated, offset: victim.frameOffset, chunk: 4, lostEvents: 8,
                    message:
                        "the chunk's zstd frame declares \(victim.header.compressedSize) bytes but the file ends at byte \(length), \(got) bytes in"
                )
            ])
        #expect(seen[1] == seen[0])
    }

    @Test func flippedBitInOneChunkIsNamedAndOthersStillRead() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, bytes, buf, chunks) = try Self.smallTrace(dir)
        let victim = chunks[2]
        let path = dir.appendingPathComponent("flip.dmat").path
        var checksumHits = 0
        var harmless = 0
        let start = Int(victim.frameOffset)
        let end = start + Int(victim.header.compressedSize)
        for at in start..<end {
            var damaged = bytes
            damaged[at] ^= UInt8(1) << UInt8(at % 8)
            try Data(damaged).write(to: URL(fileURLWithPath: path))
            let reader = try TraceReader(path: path)
            reader.decodeThreads = at % 2 == 0 ? 1 : 3
            var events: [Event] = []
            try reader.forEachEvent { _, e in events.append(e) }
            if reader.damage.isEmpty {
                // Some header bits do not change the data (a larger window size): the data must then be intact.
                #expect(events == buf.events, "flip at \(at) went unnoticed but changed events")
                harmless += 1
                continue
            }
            #expect(reader.damage.count == 1, "flip at \(at): \(reader.damage)")
            let d = try #require(reader.damage.first)
            #expect(d.chunk == 2 && d.offset == victim.frameOffset && d.lostEvents == 8)
            #expect(d.kind == .checksum || d.kind == .corruptChunk)
            if d.kind == .checksum { checksumHits += 1 }
            #expect(events == Array(buf.events[0..<16] + buf.events[24...]))
        }
        #expect(checksumHits > (end - start) / 4)
        #expect(harmless <= 2)
    }

    @Test func checksumFailureMessage() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, bytes, _, chunks) = try Self.smallTrace(dir)
        var damaged = bytes
        // The byte before the 4-byte content checksum: the last byte of the last block's data.
        let c = chunks[4]
        let at = Int(c.frameOffset + c.header.compressedSize) - 1
        damaged[at] ^= 0x40
        let path = dir.appendingPathComponent("sum.dmat").path
        try Data(damaged).write(to: URL(fileURLWithPath: path))
        let reader = try TraceReader(path: path)
        #expect(try reader.verify() == false)
        #expect(
            reader.damage == [
                TraceDamage(
                    kind: .checksum, offset: c.frameOffset, chunk: 4, lostEvents: 8,
                    message: "content checksum mismatch")
            ])
        #expect(
            reader.damage[0].description
                == "chunk 4 at byte \(c.frameOffset): checksum: content checksum mismatch (8 events lost)")
    }

    @Test func flippedBitInAChunkHeaderIsSkippedByResync() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, bytes, buf, chunks) = try Self.smallTrace(dir)
        var damaged = bytes
        damaged[Int(chunks[3].headerOffset) + 20] ^= 0x01  // inside the CHNK body
        let path = dir.appendingPathComponent("hdr.dmat").path
        try Data(damaged).write(to: URL(fileURLWithPath: path))
        let (back, reader) = try Fixtures.read(path)
        #expect(back.events == Array(buf.events[0..<24] + buf.events[32...]))
        #expect(reader.damage.map(\.kind).contains(.badChunkHeader))
        #expect(reader.damage.first?.offset == chunks[3].headerOffset)
    }

    /// A hand-made file: valid header, then frames declaring absurd sizes (with valid CRCs).
    @Test func absurdSizesAreRejectedWithoutAllocating() throws {
        var file = TraceWriter.headerFrame(chunkEvents: 8)
        // 2^32 - 1 strings.
        var strs = ByteWriter()
        strs.u32(0)
        strs.u32(0xFFFF_FFFF)
        strs.u32(5)
        strs.append(Array("hello".utf8))
        let stringsAt = file.count
        file += ByteWriter.sideFrame(tag: DMATFormat.Tag.strings, body: strs.bytes)
        // A chunk of 1 TiB.
        var chnk = ByteWriter()
        chnk.u32(0)
        chnk.u32(0xFFFF_FFFF)
        chnk.u64(1 << 40)
        chnk.u64(1 << 40)
        chnk.u64(0)
        chnk.u64(0)
        chnk.u32(0)
        chnk.u32(0)
        let chunkAt = file.count
        file += ByteWriter.sideFrame(tag: DMATFormat.Tag.chunk, body: chnk.bytes)
        // A plausible chunk header whose zstd frame declares 1 TiB of content.
        let bomb: [UInt8] =
            [0x28, 0xB5, 0x2F, 0xFD, 0xE0] + withUnsafeBytes(of: (UInt64(1) << 40).littleEndian, Array.init)
            + [0x01, 0x00, 0x00]
        var chnk2 = ByteWriter()
        chnk2.u32(0)
        chnk2.u32(1)
        chnk2.u64(56)
        chnk2.u64(UInt64(bomb.count))
        chnk2.u64(0)
        chnk2.u64(0)
        chnk2.u32(0)
        chnk2.u32(0)
        file += ByteWriter.sideFrame(tag: DMATFormat.Tag.chunk, body: chnk2.bytes)
        let bombAt = file.count
        file += bomb
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("absurd.dmat").path
        try Data(file).write(to: URL(fileURLWithPath: path))

        let clock = ContinuousClock()
        let elapsed = try clock.measure {
            let reader = try TraceReader(path: path)
            #expect(try reader.verify() == false)
            let kinds = reader.damage.map(\.kind)
            #expect(kinds == [.badSideFrame, .badChunkHeader, .corruptChunk, .missingIndex])
            #expect(reader.damage[0].offset == UInt64(stringsAt))
            #expect(reader.damage[0].message.contains("declares 4294967295 strings"))
            #expect(reader.damage[1].offset == UInt64(chunkAt))
            #expect(reader.damage[1].message.contains("declares 4294967295 events"))
            #expect(reader.damage[2].offset == UInt64(bombAt))
            #expect(
                reader.damage[2].message
                    == "zstd frame declares 1099511627776 decompressed bytes, more than the limit of 56")
            #expect(reader.strings.isEmpty && reader.eventCount == 0)
        }
        #expect(elapsed < .seconds(2))

        let d = try ZstdDecompressor()
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { out.deallocate() }
        #expect(throws: ZstdError.contentSizeTooLarge(declared: 1 << 40, limit: 64)) {
            try bomb.withUnsafeBytes { _ = try d.decompressFrame($0, into: out, limit: 1 << 30) }
        }
    }

    @Test func unknownKindAndUnknownFramesAreSkippedAndCounted() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("unknown.dmat").path
        let w = try TraceWriter(path: path, options: .init(chunkEvents: 4))
        let a = Event(kind: .dmaMap, timestamp: 10, address: 0x1000, size: 4096)
        let b = Event(kind: .dmaUnmap, timestamp: 30, address: 0x1000, size: 4096)
        try w.append(a)
        var raw = Event(kind: .marker, timestamp: 20).recordBytes
        raw[0] = 200  // a kind of a newer minor version
        try raw.withUnsafeBytes { try w.appendRecords($0) }
        try w.append(b)
        try w.flush()
        try w.writeRaw(ByteWriter.sideFrame(tag: DMATFormat.fourCC("XTRA"), body: [1, 2, 3]))
        try w.writeRaw([0x50, 0x2A, 0x4D, 0x18, 2, 0, 0, 0, 9, 9])
        try w.append(a)
        try w.finish()
        let (back, reader) = try Fixtures.read(path)
        #expect(back.events == [a, b, a])
        #expect(reader.unknownKindRecords == 1)
        #expect(reader.kindCounts[200] == 1)
        #expect(reader.unknownFrames == 2)
        #expect(reader.damage.isEmpty)
        var indexes: [Int] = []
        try reader.forEachEvent { i, _ in indexes.append(i) }
        #expect(indexes == [0, 2, 3])
    }

    @Test func newerMajorVersionIsRefused() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("v2.dmat").path
        try Fixtures.write(Fixtures.randomTrace(seed: 1, count: 3), to: path)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[16] = 4
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(throws: TraceFormatError.newerMajorVersion(path: path, found: 4, supported: 3)) {
            _ = try TraceReader(path: path)
        }
        #expect(
            TraceFormatError.newerMajorVersion(path: "x.dmat", found: 3, supported: 2).description
                == "x.dmat: format version 3.x is newer than this dmatrace reads (2.x); upgrade dmatrace")
    }

    @Test func notATraceAndEmpty() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("x.dmat").path
        try Data("hello world, this is text".utf8).write(to: URL(fileURLWithPath: path))
        #expect(
            throws: TraceFormatError.notATrace(
                path: path, reason: "byte 0 is 0x68, a .dmat starts with a dmat header frame")
        ) {
            _ = try TraceReader(path: path)
        }
        try Data().write(to: URL(fileURLWithPath: path))
        #expect(throws: TraceFormatError.notATrace(path: path, reason: "the input is empty")) {
            _ = try TraceReader(path: path)
        }
    }

    @Test func unfinishedWriterLeavesAReadableTemporaryFile() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("live.dmat").path
        let buf = Fixtures.randomTrace(seed: 9, count: 20)
        let w = try TraceWriter(path: path, metadata: buf.metadata, options: .init(chunkEvents: 8))
        for s in buf.strings { _ = w.intern(s) }
        for e in buf.events { try w.append(e) }  // two full chunks handed over, 4 events pending
        // Full chunks are compressed and appended in the background: wait for them (not for the 4).
        try w.waitUntilWritten()
        let tmp = try #require(w.temporaryPath)
        #expect(!FileManager.default.fileExists(atPath: path))
        let (back, reader) = try Fixtures.read(tmp)
        #expect(back.events == Array(buf.events.prefix(16)))
        #expect(reader.damage.map(\.kind) == [.missingIndex])
        #expect(!reader.isComplete)
        w.metadata.capture.qemuVersion = "7.2.22"
        try w.finish()
        #expect(!FileManager.default.fileExists(atPath: tmp))
        let (final, r2) = try Fixtures.read(path)
        #expect(final.events == buf.events)
        #expect(r2.metadata.capture.qemuVersion == "7.2.22")
        #expect(r2.damage.isEmpty)
    }
}

/// Random corruption never traps: mutated traces are read to the end, with damage or intact events.
@Suite struct CorruptionPropertyTests {
    @Test func randomMutationsNeverTrap() async throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, bytes, buf, _) = try DamageTests.smallTrace(dir)
        let path = dir.appendingPathComponent("mutant.dmat").path
        let headerEnd = 16 + Int(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self) }) - 8
        var rng = SplitMix64(seed: 77)
        var damaged = 0
        for round in 0..<300 {
            var m = bytes
            let edits = 1 + Int(rng.next() % 4)
            for _ in 0..<edits {
                let at = headerEnd + Int(rng.next() % UInt64(m.count - headerEnd))
                switch rng.next() % 4 {
                case 0: m[at] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
                case 1: m.remove(at: at)
                case 2: m.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                default:  // overwrite 4 bytes with a frame magic or a huge size
                    let word: UInt32 = [0x184D_2A5D, 0xFD2F_B528, 0xFFFF_FFFF, 0x184D_2A5E][Int(rng.next() % 4)]
                    for k in 0..<4 where at + k < m.count {
                        m[at + k] = UInt8(truncatingIfNeeded: word >> (8 * UInt32(k)))
                    }
                }
            }
            if try Fixtures.readMutant(m, at: path, round: round, expected: buf, slack: 8) { damaged += 1 }
        }
        #expect(damaged > 250)
    }
}
