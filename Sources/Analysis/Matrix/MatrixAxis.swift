import Models
import TraceFormat

/// The kernels and modes a matrix tries, and how its answer groups them.
///
/// Without an explicit kernel list, the axis holds every non-hypothetical kernel model except those that cannot
/// run the capture's kind of VM at all: legacy-only virtio drivers (they never see a modern-only device; on the
/// axis when a trace has a legacy virtio device) and confidential-guest kernels (restricted memory; on the axis
/// when a trace was captured in a confidential guest). Without an explicit mode list, every non-hypothetical mode
/// is tried as recorded and with each virtio transport QEMU allows (`+modern`; `+transitional` where the mode does
/// not set iommu_platform=on, which QEMU refuses on transitional devices).
public struct MatrixAxis: Sendable, Codable, Equatable {
    public var kernels: [String]
    public var modes: [String]
    public var eras: [MatrixAnswer.Era]
    public var offAxis: [MatrixAnswer.OffAxis]

    public init(kernels: [String], modes: [String], eras: [MatrixAnswer.Era], offAxis: [MatrixAnswer.OffAxis]) {
        self.kernels = kernels
        self.modes = modes
        self.eras = eras
        self.offAxis = offAxis
    }

    /// The axis for `metadata` (the traces' metadata, for relevance), `kernels`/`modes` as given (nil: default),
    /// `variants` false to try modes only as recorded.
    public static func make(
        catalog: ModelCatalog, kernels given: [String]?, modes givenModes: [String]?, variants: Bool,
        metadata: [TraceMetadata]
    ) -> MatrixAxis {
        var kernels: [String]
        var offAxis: [MatrixAnswer.OffAxis] = []
        if let given {
            kernels = given
        } else {
            let legacyDevices = metadata.contains { $0.devices.contains { $0.transport == .legacy } }
            let confidential = metadata.contains { $0.capture.confidential != nil }
            kernels = []
            for id in catalog.kernelIDs {
                guard let k = catalog.kernels[id], !k.hypothesis else { continue }
                if k.virtio.driver == .legacyOnly && !legacyDevices {
                    offAxis.append(
                        .init(
                            kernel: id,
                            why: "legacy-only virtio driver: never sees a modern-only device; "
                                + "shown with --kernels or when a trace has a legacy virtio device"))
                } else if k.virtio.restrictedMemory && !confidential {
                    offAxis.append(
                        .init(
                            kernel: id,
                            why: "confidential guest (restricted memory): not this kind of VM; "
                                + "shown with --kernels or when a trace was captured in a confidential guest"))
                } else {
                    kernels.append(id)
                }
            }
        }
        // Eras by what a kernel does with virtio DMA (the origin thread's axis), oldest first; within an era by
        // the first release the model covers.
        // `KERNEL[:RELEASE][+GUEST-IOMMU]`: the model at that release (linux-5.4:5.8 has per-device dma_ops).
        func model(_ id: String) -> (KernelModel, release: String?)? {
            let head = id.split(separator: "+").first.map(String.init) ?? id
            let parts = head.split(separator: ":", maxSplits: 1).map(String.init)
            guard let k = catalog.kernels[parts[0]] else { return nil }
            let release = parts.count == 2 ? parts[1] : nil
            return ((try? k.resolved(release: release)) ?? k, release)
        }
        func era(_ id: String) -> (rank: Int, name: String) {
            guard let (k, _) = model(id) else { return (9, "other") }
            switch (k.virtio.dmaAPI, k.iommu.dmaOpsScope) {
            case (.never, _), (.xenOnly, _): return (0, "no DMA API")
            case (.always, _): return (3, "DMA API always")
            case (_, .global): return (1, "bit 33, global dma_ops")
            case (_, .perDevice): return (2, "bit 33, per-device dma_ops")
            }
        }
        let order = { (id: String) -> (Int, Int, Int, String) in
            let m = model(id)
            let v =
                (m?.release ?? m.flatMap { ModelVersions.defaultRelease(for: $0.0) }).flatMap {
                    ReleaseRange.majorMinor($0)
                } ?? (999, 0)
            return (era(id).rank, v.0, v.1, id)
        }
        kernels.sort { order($0) < order($1) }
        var eras: [MatrixAnswer.Era] = []
        for k in kernels {
            let name = era(k).name
            if let i = eras.firstIndex(where: { $0.name == name }) {
                eras[i].kernels.append(k)
            } else {
                eras.append(.init(name: name, kernels: [k]))
            }
        }
        var modes: [String]
        if let givenModes {
            modes = givenModes
        } else {
            modes = []
            for id in catalog.modeIDs {
                guard let m = catalog.modes[id], !m.hypothesis else { continue }
                modes.append(id)
                guard variants else { continue }
                for v in VirtioDeviceVariant.allCases where Scenario.variantAllowed(v, in: m) {
                    modes.append("\(id)+\(v.rawValue)")
                }
            }
        }
        return MatrixAxis(kernels: kernels, modes: modes, eras: eras, offAxis: offAxis)
    }
}
