import DMATraceTestSupport
import Models
import Testing
import TraceFormat
@testable import Replay

/// ``DevicePlan/make(device:scenario:recordedSetting:)``: virtio feature negotiation, probe and driver
/// addressing for one modern-only virtio-blk device (`disable-legacy=on`, `iommu_platform=on` as recorded) under
/// the built-in models. Each decision has a twin that changes one input and must change the decision.
@Suite struct NegotiationTests {
    static let catalog: ModelCatalog = try! ModelCatalog.builtin()

    static func device(transport: VirtioTransport = .modern, platform: Bool = true) -> DeviceFacts {
        DeviceFacts(
            index: 0, name: "0000:00:02.0", bus: 0, slot: 2, function: 0, isVirtio: true, transport: transport,
            iommuPlatform: platform, iommuPlatformInferred: false, behindIOMMU: true, domain: 0,
            driverName: "virtio_blk", virtioName: "virtio0")
    }

    static func plan(_ scenario: String, _ d: DeviceFacts = device()) throws -> DevicePlan {
        DevicePlan.make(device: d, scenario: try Scenario.parse(scenario, catalog: catalog), recordedSetting: .strict)
    }

    /// The origin thread's failure: a kernel that cannot ack VIRTIO_F_ACCESS_PLATFORM (bit 33) meets a device
    /// that offers it as mandatory, so QEMU refuses FEATURES_OK and the driver reads back status 3.
    @Test func aKernelWithoutBit33FailsToProbeAMandatoryPlatformDevice() throws {
        let p = try Self.plan("linux-4.0-bypass@qemu-viommu-virtio-translated")
        #expect(p.blocked == .probeFailed)
        #expect(p.guestLog == ["virtio_blk virtio0: virtio: device refuses features: 3"])
        #expect(!p.accessPlatformNegotiated)
    }

    /// Twin: a kernel that acks bit 33 negotiates it and maps through the DMA API; the device's DMA is translated.
    @Test func aKernelWithBit33UsesIOVAsThroughTheVIOMMU() throws {
        let p = try Self.plan("linux-4.8-platform@qemu-viommu-virtio-translated")
        #expect(p.blocked == nil)
        #expect(p.accessPlatformNegotiated && p.addressing == .iova && p.translated)
        #expect(p.addressingSummary == "iova-translated")
    }

    /// A legacy-only driver (ids 0x1000-0x103f) never sees a modern-only device.
    @Test func aLegacyOnlyDriverNeverProbesAModernOnlyDevice() throws {
        #expect(try Self.plan("linux-legacy-bypass@qemu-noiommu").blocked == .invisible)
        // Twin: the same kernel probes a transitional device and addresses it by GPA (no DMA API).
        let t = try Self.plan(
            "linux-legacy-bypass@qemu-noiommu", Self.device(transport: .transitional, platform: false))
        #expect(t.blocked == nil && t.addressing == .gpa && !t.translated)
    }

    /// The DMA API without bit 33 behind a vIOMMU that does not translate the device: the vring's IOVA is read
    /// as a GPA, so the device is misdirected (and the platform claims a translation it does not get).
    @Test func dmaAPIWithoutBit33IsMisdirectedWhenTheDeviceBypassesTheVIOMMU() throws {
        let p = try Self.plan("dma-api-without-bit33@qemu-viommu-virtio-bypass")
        #expect(p.blocked == .misdirected)
        #expect(p.addressing == .iova && !p.translated && p.claimed)
        // Twin: with iommu_platform=on the same kernel acks bit 33 and the device's DMA is translated.
        let q = try Self.plan("dma-api-without-bit33@qemu-viommu-virtio-translated")
        #expect(q.blocked == nil && q.translated && q.accessPlatformNegotiated)
    }

    /// No vIOMMU: bit 33 is not offered (iommu_platform=off), the driver uses GPAs and nothing is translated.
    @Test func withoutAVIOMMUTheDriverUsesGPAs() throws {
        let p = try Self.plan("linux-6.1@qemu-noiommu")
        #expect(p.blocked == nil && p.addressing == .gpa && !p.translated && !p.claimed)
        #expect(p.addressingSummary == "gpa-untranslated")
        // Twin: the same kernel under the translating vIOMMU mode is translated.
        #expect(try Self.plan("linux-6.1@qemu-viommu-virtio-translated").addressingSummary == "iova-translated")
    }

    /// `swiotlb=force` is a scenario setting: a scenario that forces it bounces every streaming mapping of a guest
    /// without a translating IOMMU even when the recording did not force it (`dmatrace validate` replays a capture
    /// under another capture's command line this way).
    @Test func aScenarioThatForcesSwiotlbBounces() throws {
        var s = try Scenario.parse("linux-6.1@qemu-cc-no-viommu", catalog: Self.catalog)
        s.swiotlbForced = true
        let p = DevicePlan.make(device: Self.device(), scenario: s, recordedSetting: .strict)
        #expect(p.addressing == .bounce && p.rule.contains("swiotlb=force"))
    }

    /// Twin: without the setting the recording decides (not forced: dma-direct GPAs; forced: bounces), and a
    /// scenario that does not force it overrides a recording that did.
    @Test func swiotlbIsAsRecordedUnlessTheScenarioSays() throws {
        var s = try Scenario.parse("linux-6.1@qemu-cc-no-viommu", catalog: Self.catalog)
        var forced = Self.device()
        forced.swiotlbForced = true
        #expect(DevicePlan.make(device: Self.device(), scenario: s, recordedSetting: .strict).addressing == .gpa)
        #expect(DevicePlan.make(device: forced, scenario: s, recordedSetting: .strict).addressing == .bounce)
        s.swiotlbForced = false
        #expect(DevicePlan.make(device: forced, scenario: s, recordedSetting: .strict).addressing == .gpa)
    }

    /// A scenario that forces `swiotlb=force` where the recording did not is not the recorded scenario (its
    /// replay would not follow the recording); the twin: the same setting as recorded is.
    @Test func aScenarioWithAnotherSwiotlbSettingIsNotTheRecordedOne() throws {
        let recorded = try Scenario.parse("linux-6.1@qemu-noiommu", catalog: Self.catalog)
        let engine = ReplayEngine(scenarios: [], recorded: recorded)
        var s = recorded
        s.swiotlbForced = true
        #expect(!engine.isRecorded(s, recordedSetting: .off, recordedSwiotlbForced: false))
        #expect(engine.isRecorded(s, recordedSetting: .off, recordedSwiotlbForced: true))
        #expect(engine.isRecorded(recorded, recordedSetting: .off, recordedSwiotlbForced: false))
    }
}

/// ``DeviceAddressing``: the report spelling reads back to the same value, and the isolation rule of the matrix.
@Suite struct DeviceAddressingTests {
    @Test func everySpellingReadsBack() {
        for base in DeviceAddressing.Base.allCases {
            for claimed in [false, true] where base != .unknown {
                let a = DeviceAddressing(base: base, claimed: claimed)
                #expect(DeviceAddressing(a.description) == a)
            }
        }
        #expect(DeviceAddressing("gpa-untranslated-claimed") == DeviceAddressing(base: .gpaUntranslated, claimed: true))
        // Twin: a different spelling is a different value.
        #expect(DeviceAddressing("gpa-untranslated") != DeviceAddressing(base: .gpaUntranslated, claimed: true))
    }

    @Test func isolationFollowsTranslationAndClaims() {
        #expect(DeviceAddressing("iova-translated").isolation(verdict: .ok) == .isolated)
        #expect(DeviceAddressing("").isolation(verdict: .ok) == .isolated)
        #expect(DeviceAddressing("gpa-identity").isolation(verdict: .ok) == .unisolated)
        #expect(DeviceAddressing("gpa-untranslated-claimed").isolation(verdict: .ok) == .bypassesClaimedIOMMU)
        #expect(
            DeviceAddressing("iova-translated").isolation(verdict: .untranslatedWhileClaimed) == .bypassesClaimedIOMMU)
        // Twin: a failing verdict has no isolation, whatever the addressing.
        #expect(DeviceAddressing("iova-translated").isolation(verdict: .fault) == nil)
    }
}
