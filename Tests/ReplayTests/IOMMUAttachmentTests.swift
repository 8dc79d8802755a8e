import Foundation
import Models
import Testing
import TraceFormat
@testable import Replay
import DMATraceTestSupport

/// What the guest log's IOMMU group lines say (``IOMMUAttachment``), each rule with the twin that shows it decides.
@Suite struct IOMMUAttachmentTests {
    static let catalog: ModelCatalog = try! ModelCatalog.builtin()
    static let boot = "guest-dmesg.txt:262: iommu: Default domain type: Translated"

    static func metadata(viommu: String = "intel-iommu", groups: [Int?], logCoversBoot: Bool = true) -> TraceMetadata {
        var m = TraceMetadata()
        m.capture.kernelRelease = "6.1.0-56-amd64"
        m.capture.viommu = viommu
        m.capture.guestIOMMU = .translated
        m.capture.flushPolicy = .strict
        if logCoversBoot { m.extra["evidence.guest-iommu"] = boot }
        for (i, g) in groups.enumerated() {
            _ = m.devices.register(
                DeviceInfo(
                    name: "0000:00:0\(i + 2).0", vendorID: 0x1AF4, deviceID: 0x1042, virtioType: "block",
                    transport: .modern, iommuPlatform: true, iommuGroup: g, behindIOMMU: g == nil ? nil : true))
        }
        return m
    }

    @Test func aDeviceLeftOutOfTheGroupsIsOutsideTheIOMMU() throws {
        let m = Self.metadata(groups: [0, nil])
        #expect(IOMMUAttachment.behindIOMMU(m) == [true, false])
        let s = try RecordedScenario.infer(metadata: m, catalog: Self.catalog).get()
        #expect(s.mode.id == "qemu-viommu-bus-bypass-platform")
        // Twins: a log that does not reach back to the IOMMU core's start tells nothing; the metadata's word wins.
        #expect(IOMMUAttachment.behindIOMMU(Self.metadata(groups: [0, nil], logCoversBoot: false)) == [true, true])
        var said = m
        said.devices[1].behindIOMMU = true
        #expect(IOMMUAttachment.behindIOMMU(said) == [true, true])
        #expect(
            try RecordedScenario.infer(metadata: said, catalog: Self.catalog).get().mode.id
                == "qemu-viommu-virtio-translated")
    }

    @Test func aVIOMMUNothingWasAttachedToLeavesTheGuestIOMMUOff() throws {
        let m = Self.metadata(viommu: "virtio-iommu", groups: [nil, nil])
        #expect(IOMMUAttachment.noneAttached(m))
        #expect(try RecordedScenario.infer(metadata: m, catalog: Self.catalog).get().guestIOMMU == .off)
        // Twins: one grouped device, no vIOMMU, or a log that starts late: the policy stands.
        for other in [
            Self.metadata(viommu: "virtio-iommu", groups: [0, nil]), Self.metadata(viommu: "none", groups: [nil, nil]),
            Self.metadata(viommu: "virtio-iommu", groups: [nil, nil], logCoversBoot: false)
        ] {
            #expect(!IOMMUAttachment.noneAttached(other))
            #expect(try RecordedScenario.infer(metadata: other, catalog: Self.catalog).get().guestIOMMU == nil)
        }
    }

    @Test func aDRHDWithoutDMATranslationIsInterruptRemappingOnly() throws {
        var m = Self.metadata(groups: [nil, nil])
        m.capture.viommuProperties["dma-translation"] = "off"
        let s = try RecordedScenario.infer(metadata: m, catalog: Self.catalog).get()
        #expect(s.mode.id == "qemu-ir-only")
        #expect(s.guestIOMMU == nil)  // the mode says it: no DMA translation whatever the guest's policy
        m.capture.viommuProperties["dma-translation"] = nil
        #expect(
            try RecordedScenario.infer(metadata: m, catalog: Self.catalog).get().mode.id
                == "qemu-viommu-virtio-translated")
    }

    /// The real captures: each inferred as what QEMU and the guest did, and replayed under it with zero divergences.
    @Test(
        .tags(.realCapture),
        arguments: [
            ("qemu10.0-intel-dma-translation-off", "linux-6.1+strict@qemu-ir-only:10.0"),
            ("qemu10.0-intel-bypass-bus-platform-on", "linux-6.1+strict@qemu-viommu-bus-bypass-platform:10.0"),
            ("qemu10.0-intel-bypass-bus-platform-off", "linux-6.1+strict@qemu-viommu-bus-bypass:10.0"),
            ("qemu10.0-virtio-iommu", "linux-6.1+off@qemu-virtio-iommu:10.0")
        ])
    func realCapturesAreInferredAsTheyRan(config: String, expected: String) throws {
        let reader = try TraceReader(path: Repository.root.appendingPathComponent("traces/\(config).dmat").path)
        let s = try RecordedScenario.infer(metadata: reader.metadata, catalog: Self.catalog).get()
        let setting = s.guestIOMMU ?? GuestIOMMUSetting(capture: reader.metadata.capture)
        #expect("\(s.kernel.id)+\(setting?.rawValue ?? "?")@\(s.mode.id)" == expected)
        let result = try ReplayEngine(scenarios: [s], recorded: s, options: ReplayOptions(scenarioThreads: 1)).run(
            reader, tracePath: config)
        #expect(result.scenarios[0].divergences.isEmpty)
    }
}
