import Analysis
import FoundationEssentials
import Replay
import Testing
import TraceFormat
@testable import Reports
import DMATraceTestSupport

@Test(arguments: ReportFormat.allCases)
func matrixReportMatchesGolden(format: ReportFormat) throws {
    let text = try format.renderer().render(Samples.matrixReport())
    let ext = ["text": "txt", "json": "json", "junit": "xml", "sarif": "sarif", "markdown": "md", "html": "html"][
        format.rawValue]!
    let golden = try #require(
        Samples.golden("matrix.\(ext)", text), "missing golden; run with DMATRACE_UPDATE_GOLDEN=1")
    #expect(text == golden)
    // Renderers are deterministic.
    #expect(try format.renderer().render(Samples.matrixReport()) == text)
}

@Test(arguments: ReportFormat.allCases)
func analyzeReportMatchesGolden(format: ReportFormat) throws {
    let text = try format.renderer().render(try Samples.analyzeReport())
    let ext = ["text": "txt", "json": "json", "junit": "xml", "sarif": "sarif", "markdown": "md", "html": "html"][
        format.rawValue]!
    let golden = try #require(
        Samples.golden("analyze.\(ext)", text), "missing golden; run with DMATRACE_UPDATE_GOLDEN=1")
    #expect(text == golden)
}

@Test func matrixReportContent() throws {
    let r = Samples.matrixReport()
    let m = try #require(r.matrix)
    // vtd-notrans runs every kernel, but DMA bypasses the IOMMU the guest trusts: unsafe, not working.
    #expect(m.modesWorkingForAllKernels == [])
    #expect(m.answer?.unsafeForEveryKernel.map(\.mode) == ["vtd-notrans"])
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
    #expect(
        xml.contains("<testcase classname=\"dmatrace.intel-viommu-strict.linux-4_4@vtd-strict\" name=\"0000:00:03.0\""))
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
    #expect(html.contains("<a href=\"#f-\(fp)\">F</a>"))
    #expect(html.firstRange(of: "id=\"answer\"")!.lowerBound < html.firstRange(of: "id=\"findings\"")!.lowerBound)
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
    let r = Diff.report(
        base: Samples.matrixReport(), new: Samples.matrixReport(plantedRegression: true), basePath: "base.json",
        newPath: "new.json")
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
        Event(kind: .dmaUnmap, timestamp: 2_250, device: 0, direction: .toDevice, address: 0x1000, size: 512)
    ]
    let f = Finding(
        trace: "t", scenario: "recorded", device: "0000:00:03.0", category: "dma-api-debug", key: "k",
        rule: "r", origin: .dmaDebug, severity: .error, count: 1,
        first: Occurrence(
            eventIndex: 1, timestamp: 1_500, sourceFile: nil, sourcePosition: nil, deviceAddress: 0x1000,
            bufferAddress: nil, size: 512, write: false, reason: nil),
        worst: nil, message: "m", explanation: "e", guestLog: [], hostLog: [])
    let json = try PerfettoExport.render(EventBuffer(metadata: meta, events: events), trace: "t", findings: [f])
    let golden = try #require(Samples.golden("perfetto.json", json))
    #expect(json == golden)
    // Timestamps count from the first event (1000 ns), exactly; the mapping is an async slice.
    #expect(json.contains("\"timeOriginNs\":\"1000\""))
    #expect(json.contains("\"cat\":\"mapping\",\"ph\":\"b\",\"id\":1,\"pid\":1,\"tid\":1,\"ts\":0.000"))
    #expect(json.contains("\"cat\":\"mapping\",\"ph\":\"e\",\"id\":1,\"pid\":1,\"tid\":1,\"ts\":1.250"))
    #expect(json.contains("\"cat\":\"finding\",\"ph\":\"i\",\"s\":\"g\",\"pid\":1,\"tid\":1,\"ts\":0.500"))
    #expect(PerfettoRules.violations(json).isEmpty)
}

/// The slice rules Perfetto's JSON importer applies: complete (`X`) events on one thread nest and never overlap
/// partially; every async begin (`b`) has one end (`e`) with the same cat and id at or after it; an id is not
/// begun again while open.
enum PerfettoRules {
    struct Doc: Decodable {
        struct E: Decodable {
            var ph: String; var pid: Int?; var tid: Int?; var ts: Double?; var dur: Double?; var id: Int?;
            var cat: String?
        }
        var traceEvents: [E]
    }

    static func violations(_ json: String) -> [String] {
        guard let doc = try? JSONDecoder().decode(Doc.self, from: Data(json.utf8)) else {
            return ["not trace-event JSON"]
        }
        var out: [String] = []
        var spans: [String: [(Double, Double)]] = [:]
        for e in doc.traceEvents where e.ph == "X" {
            spans["\(e.pid ?? 0)/\(e.tid ?? 0)", default: []].append((e.ts ?? 0, (e.ts ?? 0) + (e.dur ?? 0)))
        }
        for (track, list) in spans {
            var stack: [Double] = []
            for (start, end) in list.sorted(by: { ($0.0, -$0.1) < ($1.0, -$1.1) }) {
                while let top = stack.last, top <= start { stack.removeLast() }
                if let top = stack.last, end > top { out.append("X events overlap on \(track) at \(start)") }
                stack.append(end)
            }
        }
        var open: [String: Double] = [:]
        for e in doc.traceEvents where e.ph == "b" || e.ph == "e" {
            let key = "\(e.pid ?? 0)/\(e.cat ?? "")/\(e.id.map(String.init) ?? "none")"
            if e.ph == "b" {
                if open[key] != nil { out.append("id \(key) begun again while open") }
                open[key] = e.ts ?? 0
            } else if let start = open.removeValue(forKey: key) {
                if (e.ts ?? 0) < start { out.append("id \(key) ends before it begins") }
            } else {
                out.append("end without begin: \(key)")
            }
        }
        out += open.keys.sorted().map { "no end: \($0)" }
        return out
    }
}

/// The real capture's export keeps Perfetto's rules with every mapping (overlapping ones included) as one async
/// slice; the twin is the old way (complete events from map to unmap on the device's thread), which the rules
/// catch as soon as two mappings of one device overlap partially.
@Test(.tags(.realCapture)) func perfettoExportOfARealCaptureKeepsTheSliceRules() throws {
    let source = try RealCapture.ingest()
    var maps = 0, perDevice: [UInt16: [(UInt64, UInt64)]] = [:], open: [String: UInt64] = [:]
    try source.forEachEvent { _, e in
        switch e.kind {
        case .dmaMap, .dmaAlloc, .iommuMap:
            maps += 1
            open["\(e.kind == .iommuMap)\(e.device):\(e.address)"] = e.timestamp
        case .dmaUnmap, .dmaFree, .iommuUnmap:
            if let s = open.removeValue(forKey: "\(e.kind == .iommuUnmap)\(e.device):\(e.address)") {
                perDevice[e.device, default: []].append((s, e.timestamp))
            }
        default: break
        }
    }
    let json = try PerfettoExport.render(source, trace: "real", findings: [])
    #expect(PerfettoRules.violations(json).isEmpty)
    #expect(json.components("\"ph\":\"b\"") == maps && json.components("\"ph\":\"e\"") == maps)
    #expect(json.components("\"name\":\"thread_name\"") == source.metadata.devices.count + 1)
    // Twin: the same mappings as X events per device thread.
    var xs = ""
    for (d, list) in perDevice {
        for (s, e) in list {
            xs += ",{\"ph\":\"X\",\"pid\":1,\"tid\":\(d),\"ts\":\(s / 1000),\"dur\":\((e - s) / 1000)}"
        }
    }
    let twin = "{\"traceEvents\":[" + xs.dropFirst() + "]}"
    #expect(!PerfettoRules.violations(twin).isEmpty, "overlapping mappings as complete events break the rules")
    #expect(
        PerfettoRules.violations("{\"traceEvents\":[{\"ph\":\"b\",\"pid\":1,\"id\":3,\"cat\":\"m\",\"ts\":1}]}") == [
            "no end: 1/m/3"
        ])
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
        Event(
            kind: .guestFault, timestamp: 1_000, detail: FaultSource.vtd.rawValue, address: 0x1000, aux: 0, aux2: reason
        ),
        Event(kind: .smmuv3Event, timestamp: 2_000, detail: 0x10, address: 0x2000, aux: 0x10, aux2: name),
        Event(kind: .guestLog, timestamp: 3_000, aux: log)
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
        Finding(
            trace: "big", scenario: "k@m", device: "0000:00:\(i % 32).0", category: "fault", key: "n=\(i)",
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

@Test(.tags(.realCapture), arguments: ReportFormat.allCases)
func realCaptureMatrixMatchesGolden(format: ReportFormat) throws {
    let report = try RealCapture.matrixReport.get()
    let text = try format.renderer().render(report)
    let ext = ["text": "txt", "json": "json", "junit": "xml", "sarif": "sarif", "markdown": "md", "html": "html"][
        format.rawValue]!
    let golden = try #require(
        Samples.golden("real-matrix.\(ext)", text), "missing golden; run with DMATRACE_UPDATE_GOLDEN=1")
    #expect(text == golden)
}

@Test(.tags(.realCapture)) func realCaptureMatrixContent() throws {
    let report = try RealCapture.matrixReport.get()
    let m = try #require(report.matrix)
    #expect(m.kernels == RealCapture.kernels && m.modes == RealCapture.modes)
    #expect(report.traces.map(\.recordedScenario) == ["linux-6.1@qemu-viommu-virtio-translated"])
    // Only linux-4.0-bypass fails under the recorded mode (it cannot ack VIRTIO_F_ACCESS_PLATFORM)...
    #expect(
        m.verdict(trace: "intel-viommu-strict", kernel: "linux-4.0-bypass", mode: "qemu-viommu-virtio-translated")
            == "probe-failed")
    #expect(m.verdict(trace: "intel-viommu-strict", kernel: "linux-6.1", mode: "qemu-viommu-virtio-translated") == "ok")
    // ...so every selected kernel works only without translation: honestly under qemu-noiommu, and under
    // qemu-viommu-virtio-bypass with DMA bypassing the IOMMU the guest trusts (unsafe, never counted as working).
    #expect(m.modesWorkingForAllKernels == ["qemu-noiommu"])
    #expect(m.answer?.unsafeForEveryKernel.map(\.mode) == ["qemu-viommu-virtio-bypass"])
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

@Test(.tags(.realCapture)) func bundledBaselineDiffsAgainstItselfAndFindsOnePlantedRegression() throws {
    // baselines/matrix.json.zst: the real captures under every kernel and mode model, zstd-compressed.
    let path = Repository.path + "/baselines/matrix.json.zst"
    let bytes = try #require(FileManager.default.contents(atPath: path))
    #expect(bytes.starts(with: [0x28, 0xB5, 0x2F, 0xFD]))
    let baseline = try Report.decode(Array(bytes), file: "baselines/matrix.json.zst")
    #expect(
        baseline.traces.map(\.name) == [
            "amd-viommu", "intel-lazy", "intel-platform-off", "intel-pt", "intel-strict", "swiotlb-force"
        ])
    #expect(Set(baseline.findings.map(\.fingerprint)).count == baseline.findings.count)
    let same = Diff.compare(base: baseline, new: baseline)
    #expect(
        same.newCount == 0 && same.fixedCount == 0 && same.changedCount == 0
            && same.unchangedCount == baseline.findings.count)
    // Plant one regression: the new run has a finding the baseline lacks.
    let planted = try #require(baseline.findings.first { $0.severity == .error })
    var older = baseline
    older.findings.removeAll { $0.fingerprint == planted.fingerprint }
    let d = Diff.compare(base: older, new: baseline)
    #expect(d.newCount == 1 && d.fixedCount == 0 && d.changedCount == 0)
    #expect(d.changes.filter { $0.status == .new }.map(\.fingerprint) == [planted.fingerprint])
    #expect(d.fails(on: .new))
}

@Test func zstdCompressedReportsDecodeAndDamagedOnesAreRefused() throws {
    let r = Samples.matrixReport()
    let json = Array(try JSONRenderer().render(r).utf8)
    var compressed = [UInt8](repeating: 0, count: ZstdCompressor.bound(json.count))
    let n = try json.withUnsafeBytes { src in
        try compressed.withUnsafeMutableBytes { try ZstdCompressor(level: 19).compressFrame(src, into: $0) }
    }
    compressed.removeLast(compressed.count - n)
    #expect(try Report.decode(compressed, file: "r.json.zst") == Report.decode(json, file: "r.json"))
    // Twin: a cut compressed file is refused with the file named, never read as a partial report.
    let cut = Array(compressed.prefix(compressed.count / 2))
    #expect(throws: ReportError.self) { try Report.decode(cut, file: "cut.json.zst") }
    do {
        _ = try Report.decode(cut, file: "cut.json.zst")
    } catch let e as ReportError {
        #expect(
            e.description.hasPrefix("cut.json.zst: not a dmatrace report: zstd-compressed, but cannot be decompressed"))
    }
}

@Test(.tags(.realCapture)) func junitClassNamesHaveExactlyThreePartsForJenkins() throws {
    let name = JUnitRenderer.className(
        trace: "intel-strict", scenario: "linux-4.8-platform@qemu-viommu-virtio-bypass-pre2.9:10.0")
    #expect(name == "dmatrace.intel-strict.linux-4_8-platform@qemu-viommu-virtio-bypass-pre2_9:10_0")
    // Twin: the naive join has more parts, which Jenkins would split at the version dots.
    #expect(name.split(separator: ".").count == 3 && "dmatrace.t.linux-4.8@q".split(separator: ".").count != 3)
    let junit = try JUnitRenderer().render(try RealCapture.matrixReport.get())
    for line in junit.split(separator: "\n") where line.contains("<testcase ") {
        let cls = line.split(separator: "\"")[1]
        #expect(cls.split(separator: ".").count == 3, "\(cls)")
    }
}

/// SARIF as GitHub code scanning takes it: a fixed finding is no result (GitHub ignores baselineState, so an
/// "absent" result would show as an open alert); every rule says what to do; a compressed capture is a logical
/// location, not a line GitHub cannot show. The twin: the reverse diff, where the planted finding is new,
/// reports it.
@Test(.tags(.realCapture)) func sarifLeavesFixedFindingsOutAndHelpsWithEveryRule() throws {
    let fixed = Diff.report(
        base: Samples.matrixReport(plantedRegression: true), new: Samples.matrixReport(), basePath: "b", newPath: "n")
    #expect(fixed.diff?.fixedCount == 1)
    let sarif = try SARIFRenderer().render(fixed)
    #expect(!sarif.contains("\"baselineState\" : \"absent\"") && !sarif.contains("replay/misdirected"))
    #expect(sarif.contains("\"findingsFixedLeftOut\" : 1"))
    let regression = Diff.report(
        base: Samples.matrixReport(), new: Samples.matrixReport(plantedRegression: true), basePath: "b", newPath: "n")
    #expect(try SARIFRenderer().render(regression).contains("\"ruleId\" : \"replay/misdirected\""))
    // Every rule has help, a short and a full description.
    struct Doc: Decodable {
        struct Run: Decodable { var tool: Tool }
        struct Tool: Decodable { var driver: Driver }
        struct Driver: Decodable { var rules: [Rule] }
        struct Rule: Decodable { var shortDescription: M; var fullDescription: M; var help: M }
        struct M: Decodable { var text: String }
        var runs: [Run]
    }
    let real = try SARIFRenderer().render(try RealCapture.matrixReport.get())
    let rules = try JSONDecoder().decode(Doc.self, from: Data(real.utf8)).runs[0].tool.driver.rules
    #expect(
        !rules.isEmpty
            && rules.allSatisfy {
                !$0.help.text.isEmpty && !$0.shortDescription.text.isEmpty && !$0.fullDescription.text.isEmpty
            })
    // The real capture's QEMU log is zstd-compressed: a logical location with the line, no region on it.
    #expect(
        real.contains("\"fullyQualifiedName\" : \"Tests/Fixtures/real/intel-viommu-strict/qemu-7.2-trace-full.log.zst:")
    )
    #expect(
        !real.contains(
            "\"uri\" : \"Tests/Fixtures/real/intel-viommu-strict/qemu-7.2-trace-full.log.zst\",\n                \"region\""
        ))
}
