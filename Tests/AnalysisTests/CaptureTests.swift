import Testing
import TraceFormat
import TraceIngest
@testable import Analysis
import DMATraceTestSupport

private func fixture(_ relative: String) -> String {
    Repository.file("Tests/Fixtures/" + relative)
}

private func ingest(_ relative: String) throws -> EventBuffer {
    let pipeline = IngestPipeline()
    let plan = try pipeline.plan([IngestInput.open(fixture(relative))])
    return try pipeline.ingest(plan).0
}

@Test func realIntelCaptureHasNoDMAAPICallsSoEveryCheckIsSkipped() throws {
    // The real Linux 6.1 capture traced iommu:* only (dma:* tracepoints arrived in 6.12): 1092 events,
    // none of them DMA-API calls. Nothing may be reported, and every check must say why it did not run.
    let trace = try ingest("real/intel-viommu-strict/guest-ftrace-iommu.txt")
    #expect(trace.events.count == 1092)
    let r = try DMADebugChecker.run(trace, trace: "guest-ftrace-iommu.txt")
    #expect(r.dmaEvents == 0)
    #expect(r.violations.isEmpty)
    #expect(r.findings().isEmpty)
    #expect(r.checks.count == 24 && r.checks.allSatisfy { !$0.ran })
    #expect(r.checks.filter { $0.skippedBecause?.hasPrefix("the trace has no DMA-API events") == true }.count == 15)
}

@Test func dmaTracepointCaptureFindsOnlyTheLiveRingsAtTheEnd() throws {
    // ftrace text of a Linux 6.15 guest with dma:* tracepoints (synthetic, in the real format): virtio rings
    // and AHCI buffers allocated at probe and still live at the end, streaming maps all balanced.
    let trace = try ingest("synthetic/ftrace-dma-virtio-linux6.15-synthetic.txt")
    let r = try DMADebugChecker.run(trace, trace: "ftrace-dma-virtio-linux6.15-synthetic.txt")
    // 8 allocs, 5 frees, 106 map_page, 106 unmap_page, 2 map_sg segments, 3 unmap_sg list entries.
    #expect(r.dmaEvents == 230)
    #expect(r.violations.filter { $0.check != .leakAtEnd }.map(\.message) == [])
    #expect(r.unmatchedBeforeCapture == 0)
    // dma_unmap_sg records physical addresses only; the second list's 2nd entry was merged into one segment.
    #expect(r.sgUnmapsWithoutMatch == 1)
    // Three coherent allocations (rings) are live when the capture ends: reported as notes, not errors.
    #expect(r.liveAtEnd == 3)
    let leaks = r.findings()
    #expect(leaks.map(\.severity) == Array(repeating: .note, count: leaks.count))
    #expect(leaks.map(\.count).reduce(0, +) == 3)
}
