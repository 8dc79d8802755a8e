import DMATraceTestSupport
import Foundation
import Testing
import TraceFormat

/// End-to-end tests of `dmatrace ingest` on the real capture: they run the built binary.
@Suite(.tags(.subprocess)) struct IngestCommandTests {
    static let fixtures = TraceCommandTests.root.appendingPathComponent("Tests/Fixtures").path
    static let strict = fixtures + "/real/intel-viommu-strict"

    private func tmp(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("dmatrace-ingest-\(UUID().uuidString)-\(name)")
            .path
    }

    private func events(_ path: String) throws -> (TraceMetadata, [Event]) {
        let reader = try TraceReader(path: path)
        var out: [Event] = []
        try reader.forEachEvent { _, e in out.append(e) }
        return (reader.metadata, out)
    }

    @Test func realCaptureMergedIntoOneTrace() throws {
        let out = tmp("real.dmat")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try TraceCommandTests.run([
            "ingest", Self.strict + "/guest-ftrace-iommu.txt", Self.strict + "/qemu-7.2-trace-full.log.zst",
            Self.strict + "/guest-dmesg.txt", "-o", out, "--meta", "qemu=7.2.22", "--meta", "ticket=BUG-7"
        ])
        #expect(r.status == 0, "\(r.err)")
        #expect(
            r.err.contains(
                "alignment: iova-first-translation, 410 pairs matched, residual skew 0.176 ms; 1092 guest events attributed to devices, 0 left unattributed"
            ))
        #expect(r.err.contains("  vtd_dmar_fault: 96\n"))
        let (meta, evs) = try events(out)
        #expect(evs.count == 12172)
        let maps = evs.filter { $0.kind == .iommuMap }
        #expect(maps.count == 675 && maps.allSatisfy { $0.hasDevice && $0.eventFlags.contains(.attributed) })
        #expect(meta.capture.qemuVersion == "7.2.22" && meta.extra["ticket"] == "BUG-7")
        #expect(meta.capture.alignment?.pairsMatched == 410)
        #expect(meta.clocks.map(\.name) == ["host-realtime", "guest-boot"])
        let faults = evs.filter { $0.kind == .guestFault }
        #expect(faults.map(\.aux) == [6, 5])
        #expect(zip(evs, evs.dropFirst()).allSatisfy { $0.timestamp <= $1.timestamp })
    }

    @Test func compressedStdinToStdout() throws {
        let gz = try Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/compressed/guest-ftrace-iommu.txt.gz"))
        let out = tmp("stdin.dmat")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try TraceCommandTests.run(["ingest", "-", "-o", out], stdin: gz)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("-: ftrace, gzip, 155180 bytes: 1092 understood, 0 skipped, 0 unknown"))
        #expect(try events(out).1.count == 1092)
    }

    @Test func jsonlRoundTrip() throws {
        let dmat = tmp("a.dmat")
        let jsonl = tmp("a.jsonl")
        let again = tmp("b.dmat")
        defer { for p in [dmat, jsonl, again] { try? FileManager.default.removeItem(atPath: p) } }
        #expect(try TraceCommandTests.run(["ingest", Self.strict + "/guest-dmesg.txt", "-o", dmat]).status == 0)
        let cat = try TraceCommandTests.run(["cat", "--jsonl", dmat])
        #expect(cat.status == 0)
        try Data(cat.out.utf8).write(to: URL(fileURLWithPath: jsonl))
        let r = try TraceCommandTests.run(["ingest", jsonl, "-o", again])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains(": jsonl, "))
        let (m1, a) = try events(dmat)
        let (m2, b) = try events(again)
        #expect(a.map(\.kind) == b.map(\.kind) && a.map(\.address) == b.map(\.address) && a.map(\.aux) == b.map(\.aux))
        #expect(a.map { m1.devices[Int($0.device)].name } == b.map { m2.devices[Int($0.device)].name })
        #expect(m2.capture.flushPolicy == .strict)
    }

    @Test func errorsAndUsage() throws {
        let junk = tmp("junk.bin")
        defer { try? FileManager.default.removeItem(atPath: junk) }
        try Data([0x17, 0x08, 0x44, 0, 1, 2, 3, 0xFF, 0xFE]).write(to: URL(fileURLWithPath: junk))
        let r = try TraceCommandTests.run(["ingest", junk, "-o", tmp("x.dmat")])
        #expect(r.status == 2)
        #expect(r.err.contains("\(junk): format not recognised"))
        let trunc = try TraceCommandTests.run([
            "ingest", Self.fixtures + "/compressed/guest-ftrace-iommu-truncated.txt.zst", "--dry-run"
        ])
        // A capture cut inside a structure is a damaged trace: exit 3, like a cut .dmat.
        #expect(trunc.status == 3)
        #expect(
            trunc.err.contains(
                "guest-ftrace-iommu-truncated.txt.zst: byte 4000: truncated: zstd stream ends inside a frame"))
        // A cut trace.dat: the offset named is the end of the data, not the section the header points to.
        let cut = tmp("cut.dat")
        defer { try? FileManager.default.removeItem(atPath: cut) }
        let dat = try Data(
            contentsOf: URL(fileURLWithPath: Self.fixtures + "/real/intel-viommu-strict/guest-trace-cmd-v7-zstd.dat"))
        try dat.prefix(2000).write(to: URL(fileURLWithPath: cut))
        let c = try TraceCommandTests.run(["ingest", cut, "--dry-run"])
        #expect(c.status == 3)
        #expect(
            c.err.contains(
                "cut.dat: byte 2000: truncated: options section header declared at byte 895587, past the end"))
        #expect(try TraceCommandTests.run(["ingest", junk, "-o", "x", "--meta", "novalue"]).status == 64)
        #expect(try TraceCommandTests.run(["ingest", junk]).status == 64)
        #expect(try TraceCommandTests.run(["ingest", junk, "--dry-run", "--format", "nope"]).status == 64)
    }

    @Test func dryRunCountsWithoutWriting() throws {
        let r = try TraceCommandTests.run([
            "ingest", "--dry-run", Self.fixtures + "/synthetic/ftrace-dma-virtio-linux6.15-synthetic.txt"
        ])
        #expect(r.status == 0)
        #expect(r.err.contains("230 events parsed (dry run)"))  // 229 lines; one dma_unmap_sg has two entries
    }
}
