import Foundation
import Models
import Testing
import TraceFormat
@testable import Replay
import DMATraceTestSupport

/// The recorded scenario from evidence alone (issue 13, item 4): each real capture of `traces/raw`, ingested
/// from its guest ftrace, guest dmesg and QEMU log *without* the capture tool's `--meta` facts, must infer the
/// same scenario as the bundled `.dmat` made with them; evidence contradicting the metadata is reported.
@Suite(.tags(.realCapture)) struct ScenarioInferenceTests {
    static let catalog: ModelCatalog = try! ModelCatalog.builtin()

    static func scenarioID(_ metadata: TraceMetadata) throws -> String {
        let s = try RecordedScenario.infer(metadata: metadata, catalog: catalog).get()
        let setting = s.guestIOMMU ?? GuestIOMMUSetting(capture: metadata.capture)
        return "\(s.kernel.id)+\(setting?.rawValue ?? "?")@\(s.mode.id)"
    }

    static func bundled(_ config: String) throws -> TraceReader {
        try TraceReader(path: Repository.root.appendingPathComponent("traces/\(config).dmat").path)
    }

    @Test(arguments: [
        "intel-strict", "intel-lazy", "intel-pt", "intel-platform-off", "amd-viommu", "swiotlb-force",
        // What only the guest log tells (IOMMUAttachment): a DRHD without DMA translation, devices
        // on a bypass_iommu bus, a vIOMMU no guest driver attached a device to.
        "qemu10.0-intel-dma-translation-off", "qemu10.0-intel-bypass-bus-platform-on",
        "qemu10.0-intel-bypass-bus-platform-off", "qemu10.0-virtio-iommu"
    ])
    func withoutMetadataInfersTheSameScenario(config: String) throws {
        let withMeta = try Self.scenarioID(try Self.bundled(config).metadata)
        let raw = try RealCapture.raw(config).get()
        // The raw ingest has no --meta: no iommu_platform, no capture.config.
        #expect(raw.metadata.extra["capture.config"] == nil)
        let evidence = try ScenarioEvidence.scan(raw)
        let completed = evidence.apply(to: raw.metadata)
        // The QEMU version (a mode's `:VERSION`) is a capture fact no input states.
        func unversioned(_ id: String) -> String {
            let parts = id.split(separator: "@", maxSplits: 1)
            return parts.count == 2 ? "\(parts[0])@\(parts[1].split(separator: ":")[0])" : id
        }
        if config == "qemu10.0-intel-bypass-bus-platform-off" {
            // Outside every DRHD a device's DMA is a GPA with iommu_platform on or off, and a 6.1 guest traces
            // no DMA-API call: the evidence cannot tell, says so, and assumes on (the capture tool's facts: off).
            #expect(try Self.scenarioID(completed).hasPrefix("linux-6.1+strict@qemu-viommu-bus-bypass"))
            #expect(
                evidence.infer(metadata: raw.metadata).filter {
                    $0.device.map { raw.metadata.devices[$0].name.hasPrefix("0000:8") } ?? false
                }
                .allSatisfy { $0.ambiguous })
        } else {
            #expect(unversioned(try Self.scenarioID(completed)) == unversioned(withMeta))
        }
        // Every inferred fact names its evidence; none contradicts the raw metadata.
        let inferences = evidence.infer(metadata: raw.metadata)
        #expect(inferences.allSatisfy { !$0.evidence.isEmpty && $0.contradicts == nil })
        // ... nor the bundled metadata made with the capture tool's facts.
        let bundled = try Self.bundled(config)
        #expect(
            try ScenarioEvidence.scan(bundled).infer(metadata: bundled.metadata).allSatisfy { $0.contradicts == nil })
    }

    /// The evidence behind the hard cases, named.
    @Test func platformOffAndSwiotlbAndPassthroughNameTheirEvidence() throws {
        func lines(_ config: String) throws -> [String] {
            let raw = try RealCapture.raw(config).get()
            return ScenarioEvidence.describe(
                try ScenarioEvidence.scan(raw).infer(metadata: raw.metadata), metadata: raw.metadata)
        }
        let off = try lines("intel-platform-off")
        #expect(
            off.contains {
                $0.hasPrefix("0000:00:02.0 iommu_platform: off - ")
                    && $0.contains("virtqueue event(s), yet no guest IOMMU map and no host translation")
            })
        let swiotlb = try lines("swiotlb-force")
        #expect(swiotlb.contains("guest-iommu: off - guest-dmesg.txt:97: DMAR: IOMMU disabled"))
        #expect(
            swiotlb.contains {
                $0.hasPrefix("0000:00:02.0 iommu_platform: on - 533 swiotlb bounce(s) without a vIOMMU")
            })
        // Identity domains: nothing in the DMA tells iommu_platform; the prior is used and said to be one.
        let pt = try lines("intel-pt")
        #expect(pt.contains { $0.hasPrefix("guest-iommu: pt - ") && $0.contains("Default domain type: Passthrough") })
        #expect(pt.contains { $0.hasPrefix("0000:00:02.0 iommu_platform: on (ambiguous) - ") })
    }

    /// Metadata that says iommu_platform=on for devices whose DMA bypassed everything: the replay reports the
    /// contradiction with its evidence (and the CLI fails on it under --fail-on-findings, dmatraceTests).
    @Test func evidenceContradictingTheMetadataIsReported() throws {
        let reader = try Self.bundled("intel-platform-off")
        var b = EventBuffer(metadata: reader.metadata)
        try reader.forEachEvent { _, e in b.append(e) }
        let blk = try #require(b.metadata.deviceIndex(named: "0000:00:02.0"))
        b.metadata.devices[Int(blk)].iommuPlatform = true
        let rec = try RecordedScenario.infer(metadata: b.metadata, catalog: Self.catalog).get()
        let r = try ReplayEngine(scenarios: [rec], recorded: rec).run(b, tracePath: "t")
        let conflicts = try #require(r.evidenceConflicts)
        #expect(conflicts.count == 1)
        #expect(
            conflicts[0].contains("0000:00:02.0 iommu_platform: off - ")
                && conflicts[0].contains("CONTRADICTS the recorded facts: the metadata says iommu_platform=on"))
        #expect(r.notes.contains { $0.hasPrefix("scenario evidence: 0000:00:02.0 iommu_platform: off") })
        // The twin: the unmodified metadata has no conflict.
        var clean = EventBuffer(metadata: reader.metadata)
        try reader.forEachEvent { _, e in clean.append(e) }
        let rec2 = try RecordedScenario.infer(metadata: clean.metadata, catalog: Self.catalog).get()
        #expect(try ReplayEngine(scenarios: [rec2], recorded: rec2).run(clean, tracePath: "t").evidenceConflicts == nil)
    }
}
