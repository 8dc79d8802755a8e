import Analysis
import FoundationEssentials
import Replay
import Testing
import TraceFormat
@testable import Reports

@Test(arguments: ReportFormat.allCases)
func matrixReportMatchesGolden(format: ReportFormat) throws {
    let text = try format.renderer().render(Samples.matrixReport())
    let ext = ["text": "txt", "json": "json", "junit": "xml", "sarif": "sarif", "markdown": "md", "html": "html"][format.rawValue]!
    let golden = try #require(Samples.golden("matrix.\(ext)", text), "missing golden; run with DMATRACE_UPDATE_GOLDEN=1")
    #expect(text == golden)
    // Renderers are deterministic.
    #expect(try format.renderer().render(Samples.matrixReport()) == text)
}

@Test(arguments: ReportFormat.allCases)
func analyzeReportMatchesGolden(format: ReportFormat) throws {
    let text = try format.renderer().render(try Samples.analyzeReport())
    let ext = ["text": "txt", "json": "json", "junit": "xml", "sarif": "sarif", "markdown": "md", "html": "html"][format.rawValue]!
    let golden = try #require(Samples.golden("analyze.\(ext)", text), "missing golden; run with DMATRACE_UPDATE_GOLDEN=1")
    #expect(text == golden)
}

@Test func matrixReportContent() throws {
    let r = Samples.matrixReport()
    let m = try #require(r.matrix)
    #expect(m.modesWorkingForAllKernels == ["vtd-notrans"])
    #expect(r.findings.map(\.ruleID) == ["replay/fault", "replay/untranslated-while-claimed"])
    #expect(r.findings.map(\.severity) == [.error, .warning])
    #expect(r.findings[0].scenario == "linux-4.4@vtd-strict")
    #expect(r.findings[0].count == 18)
    // JSON round trip.
    let json = try JSONRenderer().render(r)
    #expect(try Report.decode(Array(json.utf8), file: "r.json") == r)
}

@Test func junitHasATestcasePerTraceScenarioDevice() throws {
    let xml = try JUnitRenderer().render(Samples.matrixReport())
    #expect(xml.components("<testcase ") == 4)
    #expect(xml.components("<failure ") == 1)
    #expect(xml.contains("<testsuites name=\"dmatrace matrix\" tests=\"4\" failures=\"1\""))
    #expect(xml.contains("<testcase classname=\"dmatrace.intel-viommu-strict.linux-4.4@vtd-strict\" name=\"0000:00:03.0\""))
}

@Test func sarifPointsAtCaptureLinesAndCapsResults() throws {
    let r = Samples.matrixReport()
    let sarif = try SARIFRenderer().render(r)
    #expect(sarif.contains("\"uri\" : \"guest-trace-cmd-v6-report.txt\""))
    #expect(sarif.contains("\"startLine\" : 2"))
    #expect(sarif.contains("\"dmatraceFinding/v1\" : \"\(r.findings[0].fingerprint)\""))
    let capped = try SARIFRenderer(maxResults: 1).render(r)
    #expect(capped.components("\"ruleId\"") == 1)
    #expect(capped.contains("1 of 2 findings left out: at most 1 results per SARIF run"))
    // The kept one is the error, not the warning.
    #expect(capped.contains("\"ruleId\" : \"replay/fault\""))
}

@Test func markdownIsTruncatedWithANote() throws {
    let md = try MarkdownRenderer(limit: 1200).render(Samples.matrixReport())
    #expect(md.utf8.count <= 1200)
    #expect(md.contains("> **Truncated:**"))
    let full = try MarkdownRenderer().render(Samples.matrixReport())
    #expect(!full.contains("Truncated"))
}

@Test func textColourOnlyWhenAsked() throws {
    let plain = try TextRenderer(colour: false).render(Samples.matrixReport())
    let coloured = try TextRenderer(colour: true).render(Samples.matrixReport())
    #expect(!plain.contains("\u{1B}["))
    #expect(coloured.contains("\u{1B}[1;31merror\u{1B}[0m"))
}

@Test func htmlIsSelfContainedWithDrillDown() throws {
    let r = Samples.matrixReport()
    let html = try HTMLRenderer().render(r)
    #expect(!html.contains("http://") && !html.contains("<script") && !html.contains("src="))
    #expect(html.contains("<title>dmatrace matrix report</title>"))
    let fp = r.findings[0].fingerprint
    #expect(html.contains("<a href=\"#f-\(fp)\">fault</a>"))
    #expect(html.contains("<div class=\"finding\" id=\"f-\(fp)\">"))
}

@Test func diffFindsExactlyThePlantedRegression() throws {
    let base = Samples.matrixReport()
    let new = Samples.matrixReport(plantedRegression: true)
    let d = Diff.compare(base: base, new: new)
    #expect(d.newCount == 1)
    #expect(d.fixedCount == 0)
    #expect(d.changedCount == 0)
    #expect(d.unchangedCount == 2)
    let planted = try #require(new.findings.first { $0.category == "misdirected" })
    #expect(d.changes.filter { $0.status == .new }.map(\.fingerprint) == [planted.fingerprint])
    #expect(d.fails(on: .new) && d.fails(on: .any) && !d.fails(on: .changed))
    // Re-ingesting the same capture under another path changes nothing.
    let moved = Report(command: "matrix", results: [Samples.replay(path: "/elsewhere/intel-viommu-strict.jsonl")])
    let same = Diff.compare(base: base, new: moved)
    #expect(same.newCount == 0 && same.fixedCount == 0 && same.changedCount == 0 && same.unchangedCount == 2)
    // A different count is a change; the reverse direction is a fix.
    let more = Diff.compare(base: base, new: Samples.matrixReport(faultCount: 20))
    #expect(more.changedCount == 1)
    #expect(more.changes.first { $0.status == .changed }?.what == ["count 18 → 20"])
    let back = Diff.compare(base: new, new: base)
    #expect(back.fixedCount == 1 && back.newCount == 0)
}

@Test func diffReportRendersEveryFormat() throws {
    let r = Diff.report(base: Samples.matrixReport(), new: Samples.matrixReport(plantedRegression: true), basePath: "base.json", newPath: "new.json")
    #expect(r.command == "diff")
    let sarif = try SARIFRenderer().render(r)
    #expect(sarif.components("\"baselineState\" : \"new\"") == 1)
    #expect(sarif.components("\"baselineState\" : \"unchanged\"") == 2)
    let junit = try JUnitRenderer().render(r)
    // Only the regression fails a diff's JUnit.
    #expect(junit.components("<failure ") == 1)
    #expect(junit.contains("type=\"replay/misdirected\""))
    let text = try TextRenderer().render(r)
    #expect(text.contains("diff base.json → new.json: 1 new, 0 fixed, 0 changed, 2 unchanged"))
    for f in ReportFormat.allCases { #expect(!(try f.renderer().render(r)).isEmpty) }
}

@Test func perfettoExportMarksFindings() throws {
    var meta = TraceMetadata()
    meta.devices = [DeviceInfo(name: "0000:00:03.0")]
    let events = [
        Event(kind: .dmaMap, timestamp: 1_000, device: 0, direction: .toDevice, address: 0x1000, size: 512),
        Event(kind: .hostTranslate, timestamp: 1_500, device: 0, address: 0x1000, address2: 0x4000, size: 4096),
        Event(kind: .dmaUnmap, timestamp: 2_250, device: 0, direction: .toDevice, address: 0x1000, size: 512),
    ]
    let f = Finding(trace: "t", scenario: "recorded", device: "0000:00:03.0", category: "dma-api-debug", key: "k",
                    rule: "r", origin: .dmaDebug, severity: .error, count: 1,
                    first: Occurrence(eventIndex: 1, timestamp: 1_500, sourceFile: nil, sourcePosition: nil, deviceAddress: 0x1000, bufferAddress: nil, size: 512, write: false, reason: nil),
                    worst: nil, message: "m", explanation: "e", guestLog: [], hostLog: [])
    let json = try PerfettoExport.render(EventBuffer(metadata: meta, events: events), trace: "t", findings: [f])
    let golden = try #require(Samples.golden("perfetto.json", json))
    #expect(json == golden)
    #expect(json.contains("\"ph\":\"X\",\"pid\":1,\"tid\":1,\"ts\":1.000,\"dur\":1.250"))
    #expect(json.contains("\"cat\":\"finding\",\"ph\":\"i\",\"s\":\"g\",\"pid\":1,\"tid\":1,\"ts\":1.500"))
}

/// A guest fault's message is its reason text (aux2), not the string the reason number (aux) happens to
/// index; log kinds keep theirs (aux), the SMMUv3 event its name.
@Test func perfettoExportShowsEachKindsMessage() throws {
    var buf = EventBuffer()
    _ = buf.intern("unrelated string #0")
    let reason = buf.intern("PTE Read access is not set")
    let name = buf.intern("F_TRANSLATION")
    let log = buf.intern("a guest log line")
    buf.events = [
        Event(kind: .guestFault, timestamp: 1_000, detail: FaultSource.vtd.rawValue, address: 0x1000, aux: 0, aux2: reason),
        Event(kind: .smmuv3Event, timestamp: 2_000, detail: 0x10, address: 0x2000, aux: 0x10, aux2: name),
        Event(kind: .guestLog, timestamp: 3_000, aux: log),
    ]
    let json = try PerfettoExport.render(buf, trace: "t", findings: [])
    #expect(json.contains("\"message\":\"PTE Read access is not set\""))
    #expect(json.contains("\"message\":\"F_TRANSLATION\""))
    #expect(json.contains("\"message\":\"a guest log line\""))
    #expect(!json.contains("unrelated string #0"))
}

extension String {
    /// Number of non-overlapping occurrences of `needle`.
    func components(_ needle: String) -> Int {
        var n = 0
        var rest = self[...]
        while let r = rest.firstRange(of: needle) {
            n += 1
            rest = rest[r.upperBound...]
        }
        return n
    }
}

/// The two report files of the CLI diff test (Tests/dmatraceTests): a baseline and the same run with one
/// planted regression.
@Test func diffFixturesMatchGolden() throws {
    let base = try JSONRenderer().render(Samples.matrixReport())
    let new = try JSONRenderer().render(Samples.matrixReport(plantedRegression: true))
    #expect(Samples.golden("diff-base.json", base) == base)
    #expect(Samples.golden("diff-planted.json", new) == new)
}

@Test func ciLimitsHoldAtScale() throws {
    // 26,000 findings: SARIF keeps 25,000 per run, the Markdown summary stays within 1 MiB.
    let findings = (0..<26_000).map { i in
        Finding(trace: "big", scenario: "k@m", device: "0000:00:\(i % 32).0", category: "fault", key: "n=\(i)",
                rule: "r", origin: .replay, severity: i % 2 == 0 ? .error : .note, count: 1, first: nil, worst: nil,
                message: "finding \(i)", explanation: "e", guestLog: ["line \(i)"], hostLog: [])
    }
    let r = Report(command: "replay", traces: [], findings: findings)
    let sarif = try SARIFRenderer().render(r)
    #expect(sarif.components("\"ruleId\" : ") == 25_000)
    #expect(sarif.contains("1000 of 26000 findings left out: at most 25000 results per SARIF run"))
    #expect(sarif.components("\"level\" : \"note\"") == 12_000)  // every error kept, notes dropped first
    let md = try MarkdownRenderer().render(r)
    #expect(md.utf8.count <= 1_048_576)
    #expect(md.contains("> **Truncated:**"))
}

@Test(arguments: ReportFormat.allCases)
func realCaptureMatrixMatchesGolden(format: ReportFormat) throws {
    let report = try RealCapture.matrixReport.get()
    let text = try format.renderer().render(report)
    let ext = ["text": "txt", "json": "json", "junit": "xml", "sarif": "sarif", "markdown": "md", "html": "html"][format.rawValue]!
    let golden = try #require(Samples.golden("real-matrix.\(ext)", text), "missing golden; run with DMATRACE_UPDATE_GOLDEN=1")
    #expect(text == golden)
}

@Test func realCaptureMatrixContent() throws {
    let report = try RealCapture.matrixReport.get()
    let m = try #require(report.matrix)
    #expect(m.kernels == RealCapture.kernels && m.modes == RealCapture.modes)
    #expect(report.traces.map(\.recordedScenario) == ["linux-6.1@qemu-viommu-virtio-translated"])
    // Only linux-4.0-bypass fails under the recorded mode (it cannot ack VIRTIO_F_ACCESS_PLATFORM)...
    #expect(m.verdict(trace: "intel-viommu-strict", kernel: "linux-4.0-bypass", mode: "qemu-viommu-virtio-translated") == "probe-failed")
    #expect(m.verdict(trace: "intel-viommu-strict", kernel: "linux-6.1", mode: "qemu-viommu-virtio-translated") == "ok")
    // ...so the modes that work for every selected kernel are the two without translation.
    #expect(m.modesWorkingForAllKernels == ["qemu-viommu-virtio-bypass", "qemu-noiommu"])
    let probe = try #require(report.findings.first { $0.category == "probe-failed" && $0.device == "0000:00:02.0" })
    #expect(probe.guestLog == ["virtio_blk virtio0: virtio: device refuses features: 3"])
    #expect(probe.first?.sourceFile == "Tests/Fixtures/real/intel-viommu-strict/guest-ftrace-iommu.txt")
    // The stray DMA of the edu device is in the recording under every scenario: a warning, never an error.
    let stray = report.findings.filter { $0.device == "0000:00:05.0" }
    #expect(!stray.isEmpty && stray.allSatisfy { $0.severity == .warning })
    // JUnit: one test case per trace × scenario × device; only probe failures fail.
    let junit = try JUnitRenderer().render(report)
    #expect(junit.components("<testcase ") == m.cells.count)
    #expect(junit.components("<failure ") == report.findings.filter { $0.severity == .error }.count)
}

@Test func bundledBaselineDiffsAgainstItselfAndFindsOnePlantedRegression() throws {
    // baselines/matrix.json: the six real captures under every kernel and mode model.
    let text = try #require(Samples.readFile(RealCapture.root + "/baselines/matrix.json"))
    let baseline = try Report.decode(Array(text.utf8), file: "baselines/matrix.json")
    #expect(baseline.traces.map(\.name) == ["amd-viommu", "intel-lazy", "intel-platform-off", "intel-pt", "intel-strict", "swiotlb-force"])
    #expect(Set(baseline.findings.map(\.fingerprint)).count == baseline.findings.count)
    let same = Diff.compare(base: baseline, new: baseline)
    #expect(same.newCount == 0 && same.fixedCount == 0 && same.changedCount == 0 && same.unchangedCount == baseline.findings.count)
    // Plant one regression: the new run has a finding the baseline lacks.
    let planted = try #require(baseline.findings.first { $0.severity == .error })
    var older = baseline
    older.findings.removeAll { $0.fingerprint == planted.fingerprint }
    let d = Diff.compare(base: older, new: baseline)
    #expect(d.newCount == 1 && d.fixedCount == 0 && d.changedCount == 0)
    #expect(d.changes.filter { $0.status == .new }.map(\.fingerprint) == [planted.fingerprint])
    #expect(d.fails(on: .new))
}
