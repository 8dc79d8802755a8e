import Foundation
import Testing
import TraceFormat

/// The trace summary behind `dmatrace info` (moved from the CLI) and the JSONL trace opener.
@Suite struct TraceSummaryTests {
    static func writeTrace(_ path: String, events: Int) throws {
        var meta = TraceMetadata()
        meta.capture.kernelRelease = "6.1.0"
        let w = try TraceWriter(path: path, metadata: meta)
        for i in 0..<events {
            var e = Event(kind: .dmaMap, timestamp: UInt64(1_000_000 * (i + 1)))
            e.device = 0
            try w.append(e)
        }
        try w.finish()
    }

    @Test func summaryCountsKindsAndSpan() throws {
        let path = NSTemporaryDirectory() + "summary-\(getpid()).dmat"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.writeTrace(path, events: 3)
        let reader = try TraceReader(path: path)
        try reader.verify()
        let s = TraceSummary(reader, chunks: true)
        #expect(s.events == 3)
        #expect(s.kinds.map(\.kind) == [EventKind.dmaMap.name])
        #expect(s.firstTimestamp == 1_000_000 && s.lastTimestamp == 3_000_000)
        #expect(s.chunkList?.count == 1)
        #expect(s.text.contains("time span:   1000000 .. 3000000 ns (0.002 s)"))
        #expect(s.text.last == "damage:      none")
        #expect(try s.json().contains("\"kernelRelease\" : \"6.1.0\""))
        // Twin: without `chunks` there is no chunk list.
        #expect(TraceSummary(reader).chunkList == nil)
    }

    @Test func jsonlLinesGetTheirFileAndLineAsProvenance() throws {
        let path = NSTemporaryDirectory() + "opened-\(getpid()).jsonl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let bad = NSTemporaryDirectory() + "opened-bad-\(getpid()).jsonl"
        defer { try? FileManager.default.removeItem(atPath: bad) }
        var buffer = EventBuffer()
        buffer.append(Event(kind: .dmaMap, timestamp: 5))
        let text =
            try JSONLCodec.metadataLine(buffer.metadata) + "\n"
            + JSONLCodec.eventLine(buffer.events[0], metadata: buffer.metadata, string: { _ in nil }) + "\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let opened = try OpenedTrace.open(path)
        var seen: [Event] = []
        try opened.source.forEachEvent { _, e in seen.append(e) }
        #expect(seen.count == 1)
        #expect(seen.first?.position == 2)
        #expect(opened.source.metadata.inputs.last?.path == path)
        // Twin: a line that is not JSON is an error naming the file and line.
        try "{\"not\": json\n".write(toFile: bad, atomically: true, encoding: .utf8)
        #expect(throws: JSONLError.self) { _ = try OpenedTrace.open(bad) }
    }
}

/// The progress counter the CLI draws (``ProgressMeter``).
@Suite struct ProgressMeterTests {
    @Test func lineWithATotalHasShareRateAndETA() {
        let m = ProgressMeter(unit: "events", total: 1_000_000)
        m.add(250_000)
        #expect(m.line(elapsedSeconds: 1) == "250000/1000000 events (25%), 250k events/s, ETA 3s")
        m.add(750_000)
        #expect(m.line(elapsedSeconds: 2) == "1000000/1000000 events (100%), 500k events/s, ETA 0s")
    }

    /// Twin: without a total there is no share and no ETA.
    @Test func lineWithoutATotalHasNoETA() {
        let m = ProgressMeter(unit: "events")
        m.add(1_500_000)
        #expect(m.line(elapsedSeconds: 0.5) == "1500000 events, 3M events/s")
        #expect(ProgressMeter(unit: "parts").line(elapsedSeconds: 0) == "0 parts, 0 parts/s")
    }

    @Test func meteredSinkAndSourceCountEvents() throws {
        let m = ProgressMeter(unit: "events")
        var sink = MeteredSink(EventBuffer(), meter: m)
        for i in 0..<5000 { try sink.append(Event(kind: .dmaMap, timestamp: UInt64(i))) }
        #expect(m.done == 4096)  // counted 4,096 at a time
        sink.flushMeter()
        #expect(m.done == 5000)
        sink.flushMeter()
        #expect(m.done == 5000)
        let n = ProgressMeter(unit: "events")
        try n.counting(sink.base).forEachEvent { _, _ in }
        #expect(n.done == 5000)
    }
}

/// `verify`'s per-file check (moved from the CLI).
@Suite struct TraceVerificationTests {
    @Test func anIntactTraceIsOkAndItsDamagedCopyIsNot() throws {
        let dir = NSTemporaryDirectory() + "verification-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try TraceSummaryTests.writeTrace(dir + "/t.dmat", events: 3)
        let ok = TraceVerification.check(dir + "/t.dmat")
        #expect(ok.status == "ok" && ok.events == 3 && ok.complete)
        #expect(ok.text() == ["\(dir)/t.dmat: ok: 3 events in 1 chunks, checksums verified"])
        #expect(ok.text(quiet: true).isEmpty)
        // Twins: a cut copy is damaged, a text file unreadable (its error goes to stderr, not the text).
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/t.dmat"))
        try bytes.prefix(bytes.count - 40).write(to: URL(fileURLWithPath: dir + "/cut.dmat"))
        let cut = TraceVerification.check(dir + "/cut.dmat")
        #expect(cut.status == "damaged")
        #expect(cut.text().first?.contains("DAMAGED") == true)
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: dir + "/text.dmat"))
        let text = TraceVerification.check(dir + "/text.dmat")
        #expect(text.status == "unreadable" && text.error != nil && text.text().isEmpty)
    }
}
