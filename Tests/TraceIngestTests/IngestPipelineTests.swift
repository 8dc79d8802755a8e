import Foundation
import Testing
import TraceFormat
@testable import TraceIngest

@Suite struct IngestPipelineTests {
    @Test func guestOnlyInputsShareOneClockAndNeedNoMerge() throws {
        let pipeline = IngestPipeline()
        let plan = try pipeline.plan([
            IngestInput.open(Fixtures.path("\(Fixtures.strict)/guest-ftrace-iommu.txt")),
            IngestInput.open(Fixtures.path("\(Fixtures.strict)/guest-dmesg.txt"))
        ])
        #expect(!plan.needsMerge)
        #expect(plan.domains == [ClockDomain(id: 0, name: "guest-boot")])
        let (buf, report) = try pipeline.ingest(
            plan, meta: ["qemu": "7.2.22", "guest-iommu": "translated", "ticket": "BUG-1"])
        // No host input and no dma:* events: nothing to attribute the 1092 iommu events with.
        #expect(report.alignment?.method == "none")
        #expect(report.alignment?.unattributedEvents == 1092 && report.alignment?.attributedEvents == 0)
        #expect(
            buf.metadata.inputs.map { $0.path.split(separator: "/").last! } == [
                "guest-ftrace-iommu.txt", "guest-dmesg.txt"
            ])
        #expect(buf.metadata.inputs.map(\.bytes) == [155180, 26175])
        #expect(buf.events.filter { $0.source == 0 }.count == 1092)
        #expect(buf.events.filter { $0.kind == .guestFault }.allSatisfy { $0.source == 1 })
        // One clock: the two inputs interleave by time (the DMAR faults at 7.30 s follow the last map at 7.10 s).
        #expect(zip(buf.events, buf.events.dropFirst()).allSatisfy { $0.timestamp <= $1.timestamp })
        #expect(buf.events.suffix(2).map(\.kind) == [.guestFault, .guestFault])
        #expect(buf.metadata.capture.qemuVersion == "7.2.22")
        #expect(buf.metadata.extra["ticket"] == "BUG-1")
        let s = report.summary()
        #expect(s.contains("guest-ftrace-iommu.txt: ftrace, 155180 bytes: 1092 understood, 0 skipped, 0 unknown"))
        #expect(s.contains("  map: 675\n  unmap: 417"))
    }

    /// Guest-only attribution: the iommu:map a dma_map_page causes has its IOVA page and time. The third map
    /// (0xffffa000, no DMA-API call of its own) is adjacent to two live mappings of two devices; on another CPU
    /// than the map before it that is ambiguous and it stays unattributed, on the same CPU 1 µs after 0000:00:03.0's
    /// map right above it it continues that driver's loop (`AttributionEvidence.sameCPURun`).
    @Test(arguments: [("001", "-"), ("000", "0000:00:03.0")])
    func dmaEventsAttributeIommuMapsWithoutHost(thirdCPU: String, third: String) throws {
        let ftrace = """
                        fio-1 [000] .....  5.000001: dma_map_page: 0000:00:02.0 dir=TO_DEVICE dma_addr=ffffb640 size=16 phys_addr=429e640 attrs=
                        fio-1 [000] .....  5.000002: map: IOMMU: iova=0x00000000ffffb000 - 0x00000000ffffc000 paddr=0x000000000429e000 size=4096
                        fio-1 [000] .....  5.000003: dma_map_page: 0000:00:03.0 dir=FROM_DEVICE dma_addr=ffffb000 size=4096 phys_addr=5000000 attrs=
                        fio-1 [000] .....  5.000004: map: IOMMU: iova=0x00000000ffffb000 - 0x00000000ffffc000 paddr=0x0000000005000000 size=4096
                        fio-2 [\(thirdCPU)] .....  5.000005: map: IOMMU: iova=0x00000000ffffa000 - 0x00000000ffffb000 paddr=0x0000000005001000 size=4096
                       <idle>-0 [000] .....  5.100000: unmap: IOMMU: iova=0x00000000ffffb000 - 0x00000000ffffc000 size=4096 unmapped_size=4096
            """
        let dmesg = "[    1.000000] pci 0000:00:02.0: Adding to iommu group 2\n"
        let pipeline = IngestPipeline()
        let plan = try pipeline.plan([Fixtures.text(ftrace, path: "t.txt"), Fixtures.text(dmesg, path: "d.txt")])
        let (buf, report) = try pipeline.ingest(plan)
        let names = buf.events.filter { $0.kind == .iommuMap || $0.kind == .iommuUnmap }.map {
            $0.hasDevice ? buf.metadata.devices[Int($0.device)].name : "-"
        }
        // The unmap ends the oldest live map of its page (0000:00:02.0).
        #expect(names == ["0000:00:02.0", "0000:00:03.0", third, "0000:00:02.0"])
        let attributed = third == "-" ? 3 : 4
        #expect(
            report.alignment?.attributedEvents == attributed && report.alignment?.unattributedEvents == 4 - attributed)
        #expect(buf.events.first?.kind == .iommuGroupAdd)
    }

    @Test func badMetaValueIsAnError() {
        var m = TraceMetadata()
        #expect(
            throws: IngestError.badFormat(path: "--meta", offset: 0, reason: "flush=sometimes: expected strict or lazy")
        ) {
            try IngestPipeline.apply(meta: ["flush": "sometimes"], to: &m)
        }
    }

    /// `guest-cpus=N` sets the guest's CPU count over what the inputs showed; a count that is not one is refused.
    @Test func guestCPUsMeta() throws {
        var m = TraceMetadata(capture: CaptureFacts(guestCPUs: 2))
        try IngestPipeline.apply(meta: ["guest-cpus": "8"], to: &m)
        #expect(m.capture.guestCPUs == 8)
        for bad in ["0", "two", "-1"] {
            #expect(
                throws: IngestError.badFormat(
                    path: "--meta", offset: 0, reason: "guest-cpus=\(bad): expected a CPU count, 1...8192")
            ) {
                try IngestPipeline.apply(meta: ["guest-cpus": bad], to: &m)
            }
        }
        #expect(m.capture.guestCPUs == 8)
    }

    /// `device.NAME.FIELD` facts (QEMU -device properties the inputs cannot reveal) set the device's entry, and
    /// add a device the inputs never named.
    @Test func perDeviceMetaFacts() throws {
        var m = TraceMetadata(devices: [DeviceInfo(name: "0000:00:02.0", vendorID: 0x1AF4, deviceID: 0x1042)])
        try IngestPipeline.apply(
            meta: [
                "device.0000:00:02.0.iommu-platform": "true", "device.0000:00:02.0.transport": "modern",
                "device.0000:00:04.0.iommu-platform": "false", "device.0000:00:04.0.transport": "transitional",
                "device.0000:00:05.0.id": "1234:11e8"
            ], to: &m)
        #expect(m.devices.map(\.name) == ["0000:00:02.0", "0000:00:04.0", "0000:00:05.0"])
        #expect(
            m.devices[0].iommuPlatform == true && m.devices[0].transport == .modern && m.devices[0].deviceID == 0x1042)
        #expect(m.devices[1].iommuPlatform == false && m.devices[1].transport == .transitional)
        #expect(m.devices[2].vendorID == 0x1234 && m.devices[2].deviceID == 0x11E8 && m.devices[2].iommuPlatform == nil)
        #expect(m.extra["device.0000:00:05.0.id"] == "1234:11e8")
        #expect(
            throws: IngestError.badFormat(
                path: "--meta", offset: 0, reason: "device.0000:00:02.0.iommu-platform=on: expected true or false")
        ) {
            try IngestPipeline.apply(meta: ["device.0000:00:02.0.iommu-platform": "on"], to: &m)
        }
        #expect(
            throws: IngestError.badFormat(
                path: "--meta", offset: 0,
                reason: "device.0000:00:02.0.colour=red: expected a device field: iommu-platform, transport or id")
        ) {
            try IngestPipeline.apply(meta: ["device.0000:00:02.0.colour": "red"], to: &m)
        }
    }

    /// A dmesg forced through the ftrace importer: a clear error naming the file and its first bad line.
    @Test func mixedUpFormatIsAClearError() throws {
        let path = Fixtures.path("\(Fixtures.strict)/guest-dmesg.txt")
        let pipeline = IngestPipeline(format: "ftrace")
        let plan = try pipeline.plan([IngestInput.open(path)])
        do {
            _ = try pipeline.ingest(plan)
            Issue.record("expected an error")
        } catch {
            #expect(
                error.description.hasPrefix(
                    "\(path): byte 0: no ftrace event line found; 393 malformed lines (first: \(path):1: not an ftrace event line"
                ))
        }
    }

    @Test func lostEventsAreWarnedAbout() throws {
        let text =
            "# tracer: nop\n  dd-1 [000] 1.000001: map: IOMMU: iova=0x1000 paddr=0x2000 size=4096\nCPU:0 [LOST 17 EVENTS]\n"
        let pipeline = IngestPipeline()
        let plan = try pipeline.plan([Fixtures.text(text, path: "lost.txt")])
        let (buf, report) = try pipeline.ingest(plan)
        #expect(buf.events.map(\.kind) == [.iommuMap, .lostEvents])
        #expect(report.summary().contains("warning: the input reports 17 lost events"))
    }
}

/// The ingest verdict (moved from the CLI): no events is refused unless --allow-empty.
@Test func ingestVerdictRefusesAnEmptyResultUnlessAllowed() {
    var report = IngestReport()
    report.inputs = [
        IngestReport.Input(
            path: "empty.log", format: "dmesg", compression: nil, bytes: 10, diagnostics: IngestDiagnostics())
    ]
    let refused = report.verdict(events: 0, allowEmpty: false, forceMerge: false)
    #expect(refused.refusal?.description.hasPrefix("empty.log: no events") == true)
    // Twin: --allow-empty accepts it; nothing to warn about without guest and host inputs.
    let allowed = report.verdict(events: 0, allowEmpty: true, forceMerge: false)
    #expect(allowed.refusal == nil && allowed.warnings.isEmpty)
}

/// The ingest writer path (moved from the CLI): a refused result leaves no file; an accepted one is written.
@Test func ingestWriteCommitsOnlyAcceptedResults() throws {
    let dir = NSTemporaryDirectory() + "ingest-write-\(getpid())"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let input = dir + "/in.jsonl"
    var buffer = EventBuffer()
    buffer.append(Event(kind: .dmaMap, timestamp: 5))
    try
        (JSONLCodec.metadataLine(buffer.metadata) + "\n"
        + JSONLCodec.eventLine(buffer.events[0], metadata: buffer.metadata, string: { _ in nil }) + "\n")
        .write(toFile: input, atomically: true, encoding: .utf8)
    let pipeline = IngestPipeline(format: "jsonl")
    let destination = IngestDestination(path: dir + "/out.dmat", options: .init(), inputs: [input], noClobber: false)
    struct Refused: Error {}
    #expect(throws: Refused.self) {
        _ = try pipeline.write(try pipeline.plan([IngestInput.open(input)]), meta: [:], to: destination) { _, _ in
            throw Refused()
        }
    }
    #expect(!FileManager.default.fileExists(atPath: dir + "/out.dmat"))
    // Twin: accepted, the trace is written, and progress counted its event.
    let progress = ProgressMeter(unit: "events")
    let (_, events) = try pipeline.write(
        try pipeline.plan([IngestInput.open(input)]), meta: ["kernel": "6.1.0"], to: destination,
        progress: progress
    ) { _, _ in }
    #expect(events == 1 && progress.done == 1)
    let reader = try TraceReader(path: dir + "/out.dmat")
    #expect(reader.metadata.capture.kernelRelease == "6.1.0")
}

/// What an ``IngestRequest`` tells its observer, in order.
final class RecordingObserver: IngestObserver, @unchecked Sendable {
    var said: [String] = []
    func warning(_ message: String) { said.append("warning: \(message)") }
    func progress<T>(_ meter: ProgressMeter, _ body: () throws -> T) throws -> T {
        said.append("progress")
        return try body()
    }
    func refused(_ report: IngestReport) { said.append("refused: \(report.inputs.map(\.path))") }
    func finished(_ report: IngestReport, events: UInt64, target: String?) {
        said.append("finished: \(events) -> \(target ?? "dry run")")
    }
}

/// `dmatrace ingest` as a library call (``IngestRequest``): the `--meta` facts reach the trace and the observer
/// hears the progress and the result; the twin: an input without events is refused (the observer shown the report
/// first, nothing written) unless empty results are allowed.
@Test func anIngestRequestWritesWhatItWasToldAndRefusesAnEmptyResult() throws {
    let dir = NSTemporaryDirectory() + "ingest-request-\(getpid())"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let input = dir + "/in.jsonl", empty = dir + "/empty.jsonl"
    var buffer = EventBuffer()
    buffer.append(Event(kind: .dmaMap, timestamp: 5))
    let metadataLine = try JSONLCodec.metadataLine(buffer.metadata) + "\n"
    try (metadataLine + JSONLCodec.eventLine(buffer.events[0], metadata: buffer.metadata, string: { _ in nil }) + "\n")
        .write(toFile: input, atomically: true, encoding: .utf8)
    try metadataLine.write(toFile: empty, atomically: true, encoding: .utf8)
    func request(_ inputs: [String], to out: String?, allowEmpty: Bool = false) -> IngestRequest {
        IngestRequest(
            inputs: inputs, captureDir: nil, format: "jsonl", traceEvents: nil, meta: ["kernel=6.1.0", "qemu=7.2"],
            output: out, writer: .init(), noClobber: false, allowEmpty: allowEmpty, forceMerge: false)
    }
    let written = RecordingObserver()
    try request([input], to: dir + "/out.dmat").run(written)
    #expect(written.said == ["progress", "finished: 1 -> \(dir)/out.dmat"])
    #expect(try TraceReader(path: dir + "/out.dmat").metadata.capture.kernelRelease == "6.1.0")
    let refused = RecordingObserver()
    #expect(throws: IngestRefusal.self) { try request([empty], to: dir + "/empty.dmat").run(refused) }
    #expect(refused.said == ["progress", "refused: [\"\(empty)\"]"])
    #expect(!FileManager.default.fileExists(atPath: dir + "/empty.dmat"))
    let allowed = RecordingObserver()
    try request([empty], to: nil, allowEmpty: true).run(allowed)
    #expect(allowed.said == ["progress", "finished: 0 -> dry run"])
}

/// The dry run's sink counts every event and its time span across many reuses of its record block (4,096
/// records); a sink that dropped the events' fields would report no span.
@Test func theDryRunSinkCountsEveryEventAndItsSpan() throws {
    var sink = CountingSink()
    #expect(sink.minTimestamp == .max && sink.maxTimestamp == 0)
    for i in 0..<10_000 {
        var e = Event(kind: .dmaMap)
        e.timestamp = UInt64(5_000 + (i * 7_919) % 10_000)
        try sink.append(e)
    }
    #expect(sink.count == 10_000)
    #expect(sink.minTimestamp == 5_000 && sink.maxTimestamp == 14_999)
}
