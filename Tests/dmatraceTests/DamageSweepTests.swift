import DMATraceTestSupport
import Foundation
import Testing
import TraceFormat
import TraceIngest

/// Truncation and bit-flip sweeps over `.dmat` files of real captures: seven of the bundled corpus
/// (`traces/*.dmat`, when present) and the real Intel vIOMMU capture of Tests/Fixtures ingested here (guest ftrace, guest
/// dmesg, QEMU log). Every complete, untouched chunk must come back with exactly its records; every
/// damaged one must be named.
@Suite(.tags(.realCapture, .slow)) struct DamageSweepTests {
    /// Ingests the real capture into a `.dmat` with small chunks (many chunk boundaries to cut at).
    static func ingestRealCapture(to path: String) throws {
        let real = CLI.root + "/Tests/Fixtures/real/intel-viommu-strict/"
        let registry = ImporterRegistry(entries: [
            .simple(FtraceTextImporter.self, clockDomain: "guest-boot", positionUnit: .line) { FtraceTextImporter() },
            .simple(DmesgImporter.self, clockDomain: "guest-boot", positionUnit: .line) { DmesgImporter() },
            .simple(QEMULogImporter.self, clockDomain: "host-realtime", positionUnit: .line) { QEMULogImporter() }
        ])
        let pipeline = IngestPipeline(registry: registry)
        let inputs = try ["guest-ftrace-iommu.txt", "guest-dmesg.txt", "qemu-7.2-trace-full.log.zst"].map {
            try IngestInput.open(real + $0)
        }
        var writer = try TraceWriter(path: path, options: .init(chunkEvents: 256, cpus: true))
        let report = try pipeline.run(try pipeline.plan(inputs), into: &writer)
        #expect(report.inputs.map(\.format) == ["ftrace", "dmesg", "qemu-log"])
        try writer.finish()
    }

    /// What a clean read gives: chunks and each chunk's records.
    struct Clean {
        var chunks: [ChunkInfo]
        var records: [UInt32: [UInt8]]
        var events: UInt64
    }

    static func cleanRead(_ path: String) throws -> Clean {
        let r = try TraceReader(path: path)
        var records: [UInt32: [UInt8]] = [:]
        try r.forEachChunk { records[$0.info.header.sequence] = Array($0.records) }
        #expect(r.damage.isEmpty, "\(path): \(r.damage)")
        #expect(r.isComplete)
        return Clean(chunks: r.chunks, records: records, events: r.eventCount)
    }

    struct Outcome {
        var intact: [UInt32: [UInt8]] = [:]
        var reader: TraceReader?
        var error: TraceFormatError?
    }

    static func read(_ bytes: ArraySlice<UInt8>, at path: String) throws -> Outcome {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        var o = Outcome()
        do {
            let r = try TraceReader(path: path)
            try r.forEachChunk { o.intact[$0.info.header.sequence] = Array($0.records) }
            o.reader = r
        } catch let e as TraceFormatError {
            o.error = e
        }
        return o
    }

    struct Totals: CustomStringConvertible {
        var files = 0, cuts = 0, flips = 0, chunksRecovered = 0, damagedNamed = 0, harmlessFlips = 0, headerFlips = 0
        var harmlessInChunk: [String] = []
        var description: String {
            "\(files) files, \(cuts) cuts, \(flips) flips: \(chunksRecovered) complete chunks recovered, "
                + "\(damagedNamed) damaged chunks named, \(headerFlips) flips in the header frame (refused, exit 3), "
                + "\(harmlessFlips) flips without effect on the records (in chunks: \(harmlessInChunk))"
        }
    }

    static func sweep(_ path: String, scratch: String, cuts: Int, flips: Int, seed: UInt64, totals: inout Totals) throws
    {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let clean = try cleanRead(path)
        let name = URL(fileURLWithPath: path).lastPathComponent
        try #require(clean.chunks.count >= 3, "\(name): too few chunks to sweep")
        let firstChunk = Int(clean.chunks[0].headerOffset)
        var rng = SplitMix64(seed: seed)
        totals.files += 1

        // Truncation: at, just before and just after every chunk end, and at random places.
        var cutPoints = Set<Int>()
        for c in clean.chunks {
            let end = Int(c.frameOffset + c.header.compressedSize)
            for d in [-17, -1, 0, 1, 8, 17] where end + d > 0 && end + d < bytes.count { cutPoints.insert(end + d) }
            cutPoints.insert(Int(c.headerOffset) + 5)
        }
        while cutPoints.count < cuts {
            cutPoints.insert(firstChunk + Int(rng.next() % UInt64(bytes.count - firstChunk)))
        }
        for cut in cutPoints.sorted() {
            let o = try read(bytes[..<cut], at: scratch)
            totals.cuts += 1
            let complete = clean.chunks.filter { Int($0.frameOffset + $0.header.compressedSize) <= cut }
            guard let r = o.reader else {
                Issue.record("\(name) cut at \(cut): \(String(describing: o.error))")
                continue
            }
            // Exactly the complete chunks, with exactly their records.
            #expect(o.intact.keys.sorted() == complete.map(\.header.sequence), "\(name) cut at \(cut)")
            for (seq, rec) in o.intact where rec != clean.records[seq] {
                Issue.record("\(name) cut at \(cut): chunk \(seq) differs")
            }
            #expect(r.eventCount == complete.reduce(0) { $0 + UInt64($1.header.eventCount) })
            // The cut is named, at or before the end of the file, after the last complete chunk.
            guard let last = r.damage.last else {
                Issue.record("\(name) cut at \(cut): no damage reported")
                continue
            }
            #expect(last.kind == .truncated || last.kind == .missingIndex, "\(name) cut at \(cut): \(r.damage)")
            #expect(last.offset <= UInt64(cut))
            if let k = complete.last {
                #expect(last.offset >= k.frameOffset + k.header.compressedSize, "\(name) cut at \(cut): \(last)")
            }
            // A chunk cut in its data is named with its number and lost events.
            if let partial = clean.chunks.first(where: {
                $0.frameOffset < UInt64(cut) && Int($0.frameOffset + $0.header.compressedSize) > cut
            }) {
                #expect(
                    r.damage.contains {
                        $0.chunk == partial.header.sequence && $0.lostEvents == UInt64(partial.header.eventCount)
                    },
                    "\(name) cut at \(cut) inside chunk \(partial.header.sequence): \(r.damage)")
                totals.damagedNamed += 1
            }
            totals.chunksRecovered += o.intact.count
        }

        // Bit flips: one random bit per read, at least one in every chunk's header and data.
        var flipPoints: [Int] = []
        for c in clean.chunks {
            flipPoints.append(Int(c.headerOffset) + Int(rng.next() % 64))
            flipPoints.append(Int(c.frameOffset) + Int(rng.next() % c.header.compressedSize))
        }
        while flipPoints.count < flips { flipPoints.append(Int(rng.next() % UInt64(bytes.count))) }
        for at in flipPoints {
            var b = bytes
            b[at] ^= UInt8(1) << (rng.next() % 8)
            let o = try read(b[...], at: scratch)
            totals.flips += 1
            guard let r = o.reader else {
                // Only the header frame may make the file unreadable, and it says so (exit 3).
                #expect(
                    at < firstChunk && o.error?.isDamage == true,
                    "\(name) flip at \(at): \(String(describing: o.error))")
                totals.headerFlips += 1
                continue
            }
            // Nothing handed out differs from the original.
            for (seq, rec) in o.intact where rec != clean.records[seq] {
                Issue.record("\(name) flip at \(at): chunk \(seq) handed out with different records")
            }
            if let hit = clean.chunks.first(where: {
                UInt64(at) >= $0.headerOffset && UInt64(at) < $0.frameOffset + $0.header.compressedSize
            }) {
                // The flipped chunk is either refused and named (by number, or by its place when the chunk
                // header itself was hit), or handed out with exactly its records (a flip zstd does not
                // depend on, such as a larger window size: its content checksum still matches). Every
                // other chunk comes back.
                let handedOut = o.intact[hit.header.sequence] != nil
                if handedOut {
                    totals.harmlessFlips += 1
                    totals.harmlessInChunk.append(
                        "chunk \(hit.header.sequence) +\(UInt64(at) - hit.headerOffset) (frame +\(Int64(at) - Int64(hit.frameOffset)))"
                    )
                } else {
                    let named = r.damage.contains {
                        $0.chunk == hit.header.sequence
                            || ($0.offset >= hit.headerOffset
                                && $0.offset <= hit.frameOffset + hit.header.compressedSize)
                    }
                    #expect(named, "\(name) flip at \(at) in chunk \(hit.header.sequence): \(r.damage)")
                    totals.damagedNamed += 1
                }
                #expect(
                    o.intact.count == clean.chunks.count - (handedOut ? 0 : 1),
                    "\(name) flip at \(at): \(o.intact.count) chunks back")
            } else if at >= firstChunk {
                // Side tables, the index: every chunk still comes back.
                #expect(o.intact.count == clean.chunks.count, "\(name) flip at \(at): \(r.damage)")
                if r.damage.isEmpty { totals.harmlessFlips += 1 }
            }
            totals.chunksRecovered += o.intact.count
        }
    }

    @Test func truncationAndBitFlipSweepsOverRealCaptures() throws {
        let dir = try CLI.temporaryDirectory("sweep")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var paths: [String] = []
        let corpus = CLI.root + "/traces"
        // The six 6.1/7.2 captures and the one with dma:* events: the second boots and the other versions'
        // captures (traces/raw/README.md) repeat the same event kinds and would multiply the sweep's time.
        let swept: Set<String> = [
            "intel-strict", "intel-lazy", "intel-pt", "intel-platform-off", "amd-viommu", "swiotlb-force",
            "linux6.12-dma-api-violation"
        ]
        for f in ((try? FileManager.default.contentsOfDirectory(atPath: corpus)) ?? []).sorted()
        where f.hasSuffix(".dmat") && swept.contains(String(f.dropLast(5))) {
            let size =
                (try? FileManager.default.attributesOfItem(atPath: "\(corpus)/\(f)")[.size] as? NSNumber)?.intValue ?? 0
            guard size <= 16 << 20 else { continue }
            // The corpus files hold one or two 64K-event chunks; re-chunk them (same events, same metadata) so the
            // sweep has chunk boundaries to cut at and chunks to lose.
            let rechunked = "\(dir)/\(f)"
            try TraceWriter.write(
                try TraceReader(path: "\(corpus)/\(f)").load(), to: rechunked,
                options: TraceWriter.Options(chunkEvents: 64))
            paths.append(rechunked)
        }
        let ingested = dir + "/intel-viommu-strict.dmat"
        try Self.ingestRealCapture(to: ingested)
        paths.append(ingested)
        let clean = try Self.cleanRead(ingested)
        #expect(clean.events > 3000, "the real capture has guest and host events: \(clean.events)")

        var totals = Totals()
        for (k, p) in paths.enumerated() {
            let small = p == ingested
            try Self.sweep(
                p, scratch: dir + "/scratch.dmat", cuts: small ? 300 : 120, flips: small ? 400 : 150,
                seed: 0xD1A6 + UInt64(k), totals: &totals)
        }
        print("damage sweep: \(totals)")
        #expect(totals.damagedNamed > 0)
    }
}
