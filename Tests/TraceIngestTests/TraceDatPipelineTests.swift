import Testing
@testable import TraceIngest
import TraceFormat

/// The binary importers through the standard registry and pipeline: sniffing, clocks, merge with the host log.
@Suite struct TraceDatPipelineTests {
    static let dir = "real/intel-viommu-strict/"

    @Test func datAndQEMULogMerge() throws {
        let pipeline = IngestPipeline()
        let plan = try pipeline.plan([
            IngestInput.open(BinFixtures.url(Self.dir + "guest-trace-cmd-v7-zstd.dat")),
            IngestInput.open(BinFixtures.url(Self.dir + "qemu-7.2-trace-full.log.zst"))
        ])
        #expect(plan.entries.map(\.formatID) == ["tracedat", "qemu-log"])
        #expect(plan.domains.map(\.name) == ["host-realtime", "guest-boot"])
        let (buf, report) = try pipeline.ingest(plan)
        let a = try #require(report.alignment)
        #expect(a.method == "iova-first-translation")
        #expect(a.pairsMatched == 288)
        #expect(a.attributedEvents == 576 && a.unattributedEvents == 0)
        #expect(a.residualSkewNs < 1_000_000)
        let maps = buf.events.filter { $0.kind == .iommuMap }
        #expect(maps.count == 288)
        #expect(Set(maps.map { buf.metadata.devices[Int($0.device)].name }) == ["0000:00:02.0"])
        #expect(buf.metadata.capture.kernelRelease == "6.1.0-56-amd64")
        #expect(buf.metadata.capture.viommu == "intel-iommu")
        #expect(report.inputs[0].diagnostics.understood == ["iommu:map": 288, "iommu:unmap": 288])
        #expect(report.inputs[1].diagnostics.understood["vtd_dmar_fault"] == 96)
    }

    /// `--trace-events FILE` reaches the simpletrace importer through the registry; without it, a clear error.
    @Test func simpletraceWithAndWithoutTraceEvents() throws {
        let bin = BinFixtures.url("synthetic/qemu-simpletrace-v4-sample.bin")
        let events = BinFixtures.url("synthetic/simpletrace-trace-events.txt")
        let pipeline = IngestPipeline(options: ImportOptions(traceEvents: events))
        let plan = try pipeline.plan([IngestInput.open(bin)])
        #expect(plan.entries.map(\.formatID) == ["simpletrace"])
        #expect(plan.domains.map(\.name) == ["host-monotonic"])
        let (buf, report) = try pipeline.ingest(plan)
        #expect(buf.events.count == 26)
        #expect(report.inputs[0].diagnostics.lostEvents == 37)
        #expect(report.summary().contains("warning: the input reports 37 lost events"))

        let bare = IngestPipeline()
        #expect(
            throws: IngestError.missingCompanion(
                path: bin,
                what: "simpletrace needs the trace-events-all file of the QEMU that wrote it (--trace-events FILE)")
        ) {
            _ = try bare.ingest(try bare.plan([IngestInput.open(bin)]))
        }
    }
}
