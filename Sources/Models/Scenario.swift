import TraceFormat

/// The guest IOMMU configuration a scenario runs the kernel with (its command line: `intel_iommu=off`,
/// `iommu=pt`, `iommu.strict=1`, lazy default).
public enum GuestIOMMUSetting: String, Sendable, Codable, CaseIterable {
    /// No guest IOMMU driver for DMA (DMA addresses are GPAs).
    case off
    /// Identity (pass-through) default domain: DMA addresses are GPAs, contexts pass through.
    case passthrough = "pt"
    /// Translated DMA domain, IOTLB flushed at every unmap.
    case strict
    /// Translated DMA domain with the flush queue (unmapped IOVAs stay usable until it drains).
    case lazy

    /// The setting a capture recorded, if the facts say.
    public init?(capture: CaptureFacts) {
        switch capture.guestIOMMU {
        case .off?: self = .off
        case .passthrough?: self = .passthrough
        case .translated?: self = capture.flushPolicy == .lazy ? .lazy : .strict
        case nil: return nil
        }
    }

    /// True for the translated settings.
    public var translates: Bool { self == .strict || self == .lazy }
}

/// How a scenario creates the VM's virtio-pci devices, when not as recorded: QEMU's `disable-legacy` property.
/// A device property, not a mode: the matrix tries modes with each transport where QEMU allows it.
public enum VirtioDeviceVariant: String, Sendable, Codable, CaseIterable {
    /// Every virtio device transitional (`disable-legacy=off`): legacy-only drivers can drive it, and QEMU refuses
    /// `iommu_platform=on` on it ("VIRTIO_F_IOMMU_PLATFORM was supported by neither legacy nor transitional
    /// device": `virtio_pci_device_plugged()`, hw/virtio/virtio-pci.c, QEMU v7.2.0).
    case transitional
    /// Every virtio device modern-only (`disable-legacy=on`): legacy-only drivers do not see it; it can have
    /// `iommu_platform=on`.
    case modern
}

/// One scenario: a kernel model with a guest IOMMU setting, under a QEMU mode, optionally with every virtio
/// device created another way. Written `KERNEL[+GUEST-IOMMU]@MODE[+transitional|+modern]`, e.g.
/// `linux-4.8-platform+lazy@qemu-viommu-virtio-translated` or `linux-4.0-bypass@qemu-noiommu+transitional`.
public struct Scenario: Sendable, Equatable {
    /// The kernel model.
    public var kernel: KernelModel
    /// The QEMU mode.
    public var mode: QemuModeModel
    /// Guest IOMMU setting; nil means "as the trace recorded it".
    public var guestIOMMU: GuestIOMMUSetting?
    /// Hypotheses switched on for this run (ids), in addition to those enabled in the kernel file.
    public var enabledHypotheses: Set<String>
    /// How virtio devices are created; nil means "as the trace recorded them".
    public var devices: VirtioDeviceVariant?

    public init(
        kernel: KernelModel, mode: QemuModeModel, guestIOMMU: GuestIOMMUSetting? = nil, enabledHypotheses: Set<String> = [],
        devices: VirtioDeviceVariant? = nil
    ) {
        self.kernel = kernel
        self.mode = mode
        self.guestIOMMU = guestIOMMU
        self.enabledHypotheses = enabledHypotheses
        self.devices = devices
    }

    /// The mode part of the id (`qemu-noiommu` or `qemu-noiommu+transitional`).
    public var modeID: String { devices.map { "\(mode.id)+\($0.rawValue)" } ?? mode.id }

    /// False when QEMU would refuse to start the VM: a transitional device with `iommu_platform=on`.
    public static func variantAllowed(_ variant: VirtioDeviceVariant?, in mode: QemuModeModel) -> Bool {
        variant != .transitional || mode.virtio.iommuPlatform != .on
    }

    /// The kernel part of the id (`linux-4.8-platform` or `linux-4.8-platform+lazy`).
    public var kernelID: String { guestIOMMU.map { "\(kernel.id)+\($0.rawValue)" } ?? kernel.id }

    /// `KERNEL[+GUEST-IOMMU]@MODE[+VARIANT]`.
    public var id: String { "\(kernelID)@\(modeID)" }

    /// True when hypothesis `id` is on.
    public func hypothesisEnabled(_ id: String) -> Bool {
        enabledHypotheses.contains(id) || (kernel.hypotheses ?? []).contains { $0.id == id && $0.enabled }
    }

    /// Parses `KERNEL[+GUEST-IOMMU]@MODE[+transitional|+modern]` against `catalog`.
    public static func parse(_ text: String, catalog: ModelCatalog) throws(ModelError) -> Scenario {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw .badScenario(text, reason: "expected KERNEL[+GUEST-IOMMU]@MODE, e.g. linux-4.8-platform@qemu-noiommu")
        }
        let kernelPart = parts[0].split(separator: "+", omittingEmptySubsequences: false)
        guard kernelPart.count <= 2 else { throw .badScenario(text, reason: "more than one '+' in the kernel part") }
        var setting: GuestIOMMUSetting?
        if kernelPart.count == 2 {
            guard let s = GuestIOMMUSetting(rawValue: String(kernelPart[1])) else {
                throw .badScenario(
                    text, reason: "guest IOMMU setting '\(kernelPart[1])' is not one of off, pt, strict, lazy")
            }
            setting = s
        }
        let modePart = parts[1].split(separator: "+", omittingEmptySubsequences: false)
        guard modePart.count <= 2, !modePart[0].isEmpty else {
            throw .badScenario(text, reason: "expected MODE or MODE+transitional or MODE+modern after '@'")
        }
        var variant: VirtioDeviceVariant?
        if modePart.count == 2 {
            guard let v = VirtioDeviceVariant(rawValue: String(modePart[1])) else {
                throw .badScenario(text, reason: "device variant '\(modePart[1])' is not one of transitional, modern")
            }
            variant = v
        }
        let mode = try catalog.mode(String(modePart[0]))
        guard variantAllowed(variant, in: mode) else {
            throw .badScenario(
                text, reason: "\(mode.id) sets iommu_platform=on, which QEMU refuses on a transitional device "
                    + "(\"VIRTIO_F_IOMMU_PLATFORM was supported by neither legacy nor transitional device\")")
        }
        return Scenario(
            kernel: try catalog.kernel(String(kernelPart[0])), mode: mode, guestIOMMU: setting, devices: variant)
    }
}
