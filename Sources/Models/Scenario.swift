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

/// One scenario: a kernel model at one release with a guest IOMMU setting, under a QEMU mode at one QEMU
/// version and machine type, optionally with every virtio device created another way. Written
/// `KERNEL[:RELEASE][+GUEST-IOMMU]@MODE[:QEMU[/MACHINE]][+transitional|+modern]`, e.g.
/// `linux-4.8-platform+lazy@qemu-viommu-virtio-translated`, `linux-5.4:5.8@qemu-amd-iommu:10.0`,
/// `linux-6.1+default@qemu-viommu-virtio-translated:10.0/9.1`, `linux-4.0-bypass@qemu-noiommu+transitional`. Defaults: the kernel model's `defaultRelease`,
/// QEMU 7.2 (``ModelVersions/defaultQEMU``, or the nearest version the mode exists in), the machine type of
/// that QEMU version; the guest IOMMU setting as recorded (`default`: the kernel's own default policy).
public struct Scenario: Sendable, Equatable {
    /// The kernel model, resolved at the scenario's release.
    public var kernel: KernelModel
    /// The QEMU mode, resolved at the scenario's QEMU version and machine type.
    public var mode: QemuModeModel
    /// Guest IOMMU setting; nil means "as the trace recorded it" (or the kernel's default when nothing is recorded).
    public var guestIOMMU: GuestIOMMUSetting?
    /// True when the setting was written `+default` (the kernel's default policy for this mode).
    public var guestIOMMUIsDefault = false
    /// Hypotheses switched on for this run (ids), in addition to those enabled in the kernel file.
    public var enabledHypotheses: Set<String>
    /// How virtio devices are created; nil means "as the trace recorded them".
    public var devices: VirtioDeviceVariant?
    /// `swiotlb=force` on the guest's command line (dma-direct bounces every streaming mapping); nil means "as
    /// the trace recorded it". A kernel parameter like the guest IOMMU setting, but without a spelling in the
    /// id: `dmatrace validate` sets it from the capture whose scenario it replays under.
    public var swiotlbForced: Bool?

    public init(
        kernel: KernelModel, mode: QemuModeModel, guestIOMMU: GuestIOMMUSetting? = nil,
        enabledHypotheses: Set<String> = [],
        devices: VirtioDeviceVariant? = nil, swiotlbForced: Bool? = nil
    ) {
        self.kernel = kernel
        self.mode = mode
        self.guestIOMMU = guestIOMMU
        self.enabledHypotheses = enabledHypotheses
        self.devices = devices
        self.swiotlbForced = swiotlbForced
    }

    /// The mode part of the id (`qemu-noiommu` or `qemu-noiommu+transitional`).
    public var modeID: String { devices.map { "\(mode.id)+\($0.rawValue)" } ?? mode.id }

    /// False when QEMU would refuse to start the VM: a transitional device with `iommu_platform=on`.
    public static func variantAllowed(_ variant: VirtioDeviceVariant?, in mode: QemuModeModel) -> Bool {
        variant != .transitional || mode.virtio.iommuPlatform != .on
    }

    /// The kernel part of the id (`linux-4.8-platform`, `linux-4.8-platform+lazy`, `linux-5.4:5.8+default`).
    public var kernelID: String {
        guard let g = guestIOMMU else { return kernel.id }
        return "\(kernel.id)+\(guestIOMMUIsDefault ? "default" : g.rawValue)"
    }

    /// `KERNEL[:RELEASE][+GUEST-IOMMU]@MODE[:QEMU[/MACHINE]][+VARIANT]`.
    public var id: String { "\(kernelID)@\(modeID)" }

    /// True when hypothesis `id` is on.
    public func hypothesisEnabled(_ id: String) -> Bool {
        enabledHypotheses.contains(id) || (kernel.hypotheses ?? []).contains { $0.id == id && $0.enabled }
    }

    /// The policy the kernel picks for a translated DMA domain under this mode with nothing on the command
    /// line: the model's `defaultPolicy` for the vIOMMU kind, unless a `strictWhen` condition holds.
    public var kernelDefaultSetting: GuestIOMMUSetting {
        guard mode.hasVIOMMU else { return .off }
        if forcedStrict { return .strict }
        return (kernel.iommu.defaultPolicy ?? .init()).policy(for: mode.viommu) == .lazy ? .lazy : .strict
    }

    /// True when the kernel forces strict invalidation under this mode whatever the command line says
    /// (intel-iommu caching mode, AMD NpCache).
    public var forcedStrict: Bool {
        let when = kernel.iommu.strictWhen ?? []
        return (mode.viommu == "intel-iommu" && mode.cachingMode == true && when.contains(.cachingMode))
            || (mode.viommu == "amd-iommu" && mode.npCache == true && when.contains(.npCache))
    }

    /// True when `iommu.strict=1` does not reach this mode's vIOMMU driver in this kernel (it keeps its flush
    /// queue: Linux 5.10's amd-iommu).
    public var strictIgnored: Bool {
        mode.hasVIOMMU && (kernel.iommu.strictIgnoredBy ?? []).contains(mode.viommu) && !forcedStrict
    }

    /// The setting in effect: the scenario's, else the recorded one, else the kernel's default; a lazy
    /// setting becomes strict where the kernel forces it, a strict one lazy where the driver ignores it.
    public func effectiveSetting(recorded: GuestIOMMUSetting?) -> GuestIOMMUSetting {
        let s = guestIOMMU ?? recorded ?? kernelDefaultSetting
        if s == .lazy && forcedStrict { return .strict }
        if s == .strict && strictIgnored { return .lazy }
        return s
    }

    /// Parses `KERNEL[:RELEASE][+GUEST-IOMMU]@MODE[:QEMU[/MACHINE]][+transitional|+modern]` against `catalog`.
    public static func parse(_ text: String, catalog: ModelCatalog) throws(ModelError) -> Scenario {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw .badScenario(
                text,
                reason:
                    "expected KERNEL[:RELEASE][+GUEST-IOMMU]@MODE[:QEMU[/MACHINE]], e.g. linux-4.8-platform@qemu-noiommu"
            )
        }
        let kernelPart = parts[0].split(separator: "+", omittingEmptySubsequences: false)
        guard kernelPart.count <= 2 else { throw .badScenario(text, reason: "more than one '+' in the kernel part") }
        var setting: GuestIOMMUSetting?
        var isDefault = false
        if kernelPart.count == 2 {
            if kernelPart[1] == "default" {
                isDefault = true
            } else {
                guard let s = GuestIOMMUSetting(rawValue: String(kernelPart[1])) else {
                    throw .badScenario(
                        text,
                        reason: "guest IOMMU setting '\(kernelPart[1])' is not one of off, pt, strict, lazy, default")
                }
                setting = s
            }
        }
        let k = kernelPart[0].split(separator: ":", omittingEmptySubsequences: false)
        guard k.count <= 2, !k[0].isEmpty, k.count == 1 || !k[1].isEmpty else {
            throw .badScenario(text, reason: "expected KERNEL or KERNEL:RELEASE (e.g. linux-5.4:5.8) before '@'")
        }
        let modePart = parts[1].split(separator: "+", omittingEmptySubsequences: false)
        guard modePart.count <= 2, !modePart[0].isEmpty else {
            throw .badScenario(
                text, reason: "expected MODE[:QEMU[/MACHINE]] optionally followed by +transitional or +modern after '@'"
            )
        }
        var variant: VirtioDeviceVariant?
        if modePart.count == 2 {
            guard let v = VirtioDeviceVariant(rawValue: String(modePart[1])) else {
                throw .badScenario(text, reason: "device variant '\(modePart[1])' is not one of transitional, modern")
            }
            variant = v
        }
        let m = modePart[0].split(separator: ":", omittingEmptySubsequences: false)
        guard m.count <= 2, !m[0].isEmpty, m.count == 1 || !m[1].isEmpty else {
            throw .badScenario(
                text, reason: "expected MODE, MODE:QEMU or MODE:QEMU/MACHINE (e.g. qemu-amd-iommu:10.0) after '@'")
        }
        var qemu: String?, machine: String?
        if m.count == 2 {
            let v = m[1].split(separator: "/", omittingEmptySubsequences: false)
            guard v.count <= 2, !v[0].isEmpty, v.count == 1 || !v[1].isEmpty else {
                throw .badScenario(
                    text, reason: "expected QEMU or QEMU/MACHINE after ':' (e.g. 10.0/9.1 for pc-q35-9.1 on QEMU 10.0)")
            }
            qemu = String(v[0])
            machine = v.count == 2 ? String(v[1]) : nil
        }
        let kernel = try catalog.kernel(String(k[0])).resolved(release: k.count == 2 ? String(k[1]) : nil)
        let mode = try catalog.mode(String(m[0])).resolved(qemu: qemu, machine: machine)
        guard variantAllowed(variant, in: mode) else {
            throw .badScenario(
                text,
                reason: "\(mode.id) sets iommu_platform=on, which QEMU refuses on a transitional device "
                    + "(\"VIRTIO_F_IOMMU_PLATFORM was supported by neither legacy nor transitional device\")")
        }
        var s = Scenario(kernel: kernel, mode: mode, guestIOMMU: setting, devices: variant)
        if isDefault {
            s.guestIOMMU = s.kernelDefaultSetting
            s.guestIOMMUIsDefault = true
        }
        return s
    }
}
