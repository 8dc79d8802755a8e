import DMATraceTestSupport
import Foundation
import Models
import Testing
import TraceFormat
@testable import Replay

let catalog: ModelCatalog = try! ModelCatalog.builtin()

func replay(_ ids: [String], trace: EventBuffer = CaptureLike.trace(), options: ReplayOptions = ReplayOptions()) throws
    -> ReplayResult
{
    let scenarios = try ids.map { try Scenario.parse($0, catalog: catalog) }
    let recorded = try RecordedScenario.infer(metadata: trace.metadata, catalog: catalog).get()
    return try ReplayEngine(scenarios: scenarios, recorded: recorded, options: options).run(
        trace, tracePath: "capture-like")
}

func device(_ r: ScenarioResult, _ name: String) throws -> DeviceResult {
    try #require(r.devices.first { $0.device == name })
}

@Test func recordedScenarioIsInferredFromTheCaptureFacts() throws {
    let s = try RecordedScenario.infer(metadata: CaptureLike.metadata(), catalog: catalog).get()
    #expect(s.id == "linux-6.1@qemu-viommu-virtio-translated")
}

@Test func recordedScenarioReproducesFaultsAndTranslations() throws {
    let r = try replay(["linux-6.1@qemu-viommu-virtio-translated"])
    let s = r.scenarios[0]
    #expect(s.isRecorded)
    #expect(s.divergences == [])
    #expect(
        r.notes == [
            "1 recorded host translation(s) fall outside the guest trace's coverage (no guest map/unmap events around them) and were not replayed"
        ])
    let blk = try device(s, "0000:00:02.0")
    #expect(blk.verdict == .ok)
    #expect(blk.accesses == 5)
    #expect(blk.addressing == "iova-translated")
    let edu = try device(s, "0000:00:05.0")
    #expect(edu.verdict == .ok)  // stray DMA is the device's own bug: reported, not a scenario failure
    #expect(edu.accesses == 96)
    #expect(edu.groups.map(\.key) == ["reason=0x05,write,stray", "reason=0x06,read,stray"])
    #expect(edu.groups.map(\.count) == [32, 64])
    let read = edu.groups[1]
    #expect(read.first?.deviceAddress == 0x100_0000)
    #expect(read.first?.sourceFile == "qemu-7.2-trace-full.log")
    #expect(read.first?.sourcePosition == 10_569)
    #expect(
        read.guestLog == RealCapture.eduReadFaultLog)
    #expect(
        edu.groups[0].guestLog == RealCapture.eduWriteFaultLog)
    #expect(read.hostLog.first == "vtd_dmar_fault sid 0x28 fault 6 addr 0x1000000 write 0")
    #expect(try device(s, "0000:00:04.0").verdict == .ok)
}

@Test func a44KernelUnderIOMMUPlatformOnFailsToProbe() throws {
    let s = try replay(["linux-4.0-bypass@qemu-viommu-virtio-translated"]).scenarios[0]
    for (name, line) in [
        ("0000:00:02.0", "virtio_blk virtio0: virtio: device refuses features: 3"),
        ("0000:00:03.0", "virtio_net virtio1: virtio: device refuses features: 3")
    ] {
        let d = try device(s, name)
        #expect(d.verdict == .probeFailed)
        #expect(d.accesses == 0)
        #expect(d.groups.count == 1)
        #expect(d.groups[0].guestLog == [line])
    }
    #expect(try device(s, "0000:00:04.0").verdict == .ok)
    #expect(!s.works)
}

@Test func a44KernelWithIOMMUPlatformOffWorksUntranslatedWhileClaimed() throws {
    let s = try replay(["linux-4.0-bypass@qemu-viommu-virtio-bypass"]).scenarios[0]
    let d = try device(s, "0000:00:02.0")
    #expect(d.verdict == .untranslatedWhileClaimed)
    #expect(d.addressing == "gpa-untranslated-claimed")
    #expect(d.groups.map(\.key) == ["untranslated-while-claimed"])
    #expect(d.groups[0].count == 5)
    #expect(s.works)
}

/// The rejected proposals use the DMA API without bit 33: the vring's IOVA reaches a device that does not
/// translate, so the device cannot find its ring (model review: not a per-buffer misdirection).
@Test func dmaAPIWithoutBit33LeavesTheDeviceWithoutItsRing() throws {
    let s = try replay(["dma-api-without-bit33@qemu-viommu-virtio-bypass"]).scenarios[0]
    let d = try device(s, "0000:00:02.0")
    #expect(d.verdict == .misdirected)
    #expect(d.addressing == "none")
    #expect(d.accesses == 0)
    #expect(d.groups.map(\.key) == ["misdirected"])
    #expect(d.groups[0].rule.contains("bit 33 not negotiated"))
    #expect(!d.groups.contains { $0.key == "iova-used-as-gpa" })  // the old per-buffer claim
    #expect(!s.works)
    // With bit 33 offered and acked the device translates the ring's IOVA and works; the transitional
    // 00:04.0 (no iommu_platform) has the same problem as above.
    let on = try replay(["dma-api-without-bit33@qemu-viommu-virtio-translated"]).scenarios[0]
    #expect(try device(on, "0000:00:02.0").verdict == .ok)
    #expect(try device(on, "0000:00:04.0").verdict == .misdirected)
}

@Test func restrictedMemoryKernelRefusesDevicesWithoutAccessPlatform() throws {
    let s = try replay(["linux-restricted-memory@qemu-viommu-virtio-bypass"]).scenarios[0]
    let d = try device(s, "0000:00:02.0")
    #expect(d.verdict == .probeFailed)
    #expect(d.groups[0].guestLog == ["virtio_blk virtio0: device must provide VIRTIO_F_ACCESS_PLATFORM"])
    let ok = try replay(["linux-restricted-memory@qemu-cc-no-viommu"]).scenarios[0]
    #expect(try device(ok, "0000:00:02.0").verdict == .ok)
    #expect(try device(ok, "0000:00:02.0").addressing == "bounce-gpa")
}

@Test func legacyOnlyKernelDoesNotSeeModernOnlyDevices() throws {
    let s = try replay(["linux-legacy-bypass@qemu-viommu-virtio-translated"]).scenarios[0]
    #expect(try device(s, "0000:00:02.0").verdict == .invisible)
    #expect(try device(s, "0000:00:03.0").verdict == .invisible)
    #expect(try device(s, "0000:00:04.0").verdict == .ok)
}

@Test func modernKernelsWorkInEveryMode() throws {
    for k in ["linux-4.8-platform", "linux-6.1", "linux-6.19-mapops", "rhel7-backport"] {
        for m in catalog.modeIDs
        where !(m == "qemu-viommu-bus-bypass-platform" && k != "linux-6.1" && k != "linux-6.19-mapops") {
            let s = try replay(["\(k)@\(m)"]).scenarios[0]
            #expect(s.works, "\(k)@\(m): \(s.devices.map { "\($0.device)=\($0.verdict.rawValue)" })")
        }
    }
}

@Test func globalDMAOpsKernelsFailMappingsOutsideEveryDRHD() throws {
    let s = try replay(["linux-4.8-platform@qemu-viommu-bus-bypass-platform"]).scenarios[0]
    let d = try device(s, "0000:00:02.0")
    #expect(d.verdict == .mappingFailed)
    #expect(
        d.groups[0].guestLog == [
            "DMAR: Allocating domain for 0000:00:02.0 failed", "virtio_blk: probe of virtio0 failed with error -12"
        ])
    let hyp = try replay(
        ["linux-4.8-platform@qemu-viommu-bus-bypass-platform"],
        options: ReplayOptions(hypotheses: ["null-deref-no-catch-all-drhd"]))
    #expect(try device(hyp.scenarios[0], "0000:00:02.0").verdict == .oopsHypothesis)
}

@Test func olderKernelsPrintFaultsInTheirEra() throws {
    let s = try replay(["linux-4.8-platform@qemu-viommu-virtio-translated"]).scenarios[0]
    let edu = try device(s, "0000:00:05.0")
    // 4.8 attaches a context only at the device's first DMA-API mapping: the edu device never mapped.
    #expect(edu.groups.map(\.key) == ["reason=0x02,read,stray", "reason=0x02,write,stray"])
    #expect(
        edu.groups[0].guestLog == [
            "DMAR: DRHD: handling fault status reg 2",
            "DMAR: [DMA Read] Request device [00:05.0] fault addr 1000000 [fault reason 02] Present bit in context entry is clear"
        ])
    let s44 = try replay(["linux-4.0-bypass@qemu-viommu-virtio-bypass"]).scenarios[0]
    #expect(
        try device(s44, "0000:00:05.0").groups[0].guestLog == [
            "DMAR: DRHD: handling fault status reg 2",
            "DMAR: DMAR:[DMA Read] Request device [00:05.0] fault addr 1000000 ",
            "DMAR:[fault reason 02] Present bit in context entry is clear"
        ])
    let noiommu = try replay(["linux-6.1@qemu-noiommu"]).scenarios[0]
    #expect(try device(noiommu, "0000:00:05.0").groups.map(\.key) == ["stray"])
}

@Test func replayIsByteIdenticalAcrossRuns() throws {
    let ids = catalog.kernelIDs.flatMap { k in catalog.modeIDs.map { "\(k)@\($0)" } }
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys, .prettyPrinted]
    let a = try enc.encode(try replay(ids))
    let b = try enc.encode(try replay(ids))
    #expect(a == b)
    #expect(a.count > 10_000)
}

/// `replay --recorded` (``ReplayEngine/recorded(_:scenarios:addingRecorded:catalog:options:)``): the recorded
/// scenario is inferred and replayed first, once; the twins: not added without `addingRecorded` (but still known to
/// the engine), and a trace that does not tell it is an error only when it was asked for.
@Test func theRecordedScenarioIsAddedFirstWhenAskedFor() throws {
    let trace = CaptureLike.trace()
    let noiommu = try Scenario.parse("linux-6.1@qemu-noiommu", catalog: catalog)
    let recorded = try Scenario.parse("linux-6.1@qemu-viommu-virtio-translated", catalog: catalog)
    func ids(_ e: ReplayEngine) -> [String] { e.scenarios.map(\.id) }
    let added = try ReplayEngine.recorded(
        trace, scenarios: [noiommu], addingRecorded: true, catalog: catalog, options: ReplayOptions())
    #expect(ids(added) == [recorded.id, noiommu.id] && added.recorded?.id == recorded.id)
    let once = try ReplayEngine.recorded(
        trace, scenarios: [noiommu, recorded], addingRecorded: true, catalog: catalog, options: ReplayOptions())
    #expect(ids(once) == [noiommu.id, recorded.id])
    let notAsked = try ReplayEngine.recorded(
        trace, scenarios: [noiommu], addingRecorded: false, catalog: catalog, options: ReplayOptions())
    #expect(ids(notAsked) == [noiommu.id] && notAsked.recorded?.id == recorded.id)
    let silent = EventBuffer(metadata: TraceMetadata())
    #expect(throws: UnknownRecordedScenario.self) {
        try ReplayEngine.recorded(
            silent, scenarios: [noiommu], addingRecorded: true, catalog: catalog, options: ReplayOptions())
    }
    #expect(
        try ReplayEngine.recorded(
            silent, scenarios: [noiommu], addingRecorded: false, catalog: catalog, options: ReplayOptions()
        ).recorded == nil)
}

/// What `replay --fail-on-findings` fails on (``ReplayResult/hasFindings``): a failing scenario; the twin: a
/// working one does not, until evidence contradicts the recorded facts.
@Test func findingsAreFailuresDivergencesAndContradictions() throws {
    #expect(try replay(["linux-4.0-bypass@qemu-viommu-virtio-translated"]).hasFindings)
    var works = try replay(["linux-6.1@qemu-viommu-virtio-translated"])
    #expect(!works.hasFindings)
    works.evidenceConflicts = ["viommu: the events show none"]
    #expect(works.hasFindings)
}
