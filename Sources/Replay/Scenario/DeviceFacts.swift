import Models
import TraceFormat

/// What the trace says about one device, normalised for negotiation: PCI address, virtio transport and
/// `iommu_platform` as recorded (with fallbacks from ids and feature bits when the metadata is thin).
struct DeviceFacts: Sendable {
    /// Index into ``TraceMetadata/devices``.
    var index: Int
    /// `0000:00:02.0`.
    var name: String
    /// Bus, device, function parsed from the name (for `[00:02.0]` in fault lines and the VT-d source id).
    var bus: UInt8, slot: UInt8, function: UInt8
    /// True for a virtio device.
    var isVirtio: Bool
    /// Virtio transport as recorded (transitional when only legacy ids are known).
    var transport: VirtioTransport
    /// `iommu_platform` as recorded.
    var iommuPlatform: Bool
    /// True when ``iommuPlatform`` was not in the metadata and was inferred (see ``build(from:)``).
    var iommuPlatformInferred: Bool
    /// False when the recording says the device sits outside every DRHD or on a bypass bus.
    var behindIOMMU: Bool
    /// IOMMU domain index (devices of one IOMMU group share a domain).
    var domain: Int
    /// `virtio_blk`, `virtio_net`, ...: the driver name the kernel prints, or the recorded driver.
    var driverName: String
    /// `virtioN`: the kernel's virtio device name (virtio devices numbered in PCI order).
    var virtioName: String
    /// The recorded guest ran with `swiotlb=force` (capture facts): dma-direct bounces every mapping.
    var swiotlbForced = false

    /// PCI source id as the vIOMMU sees it (bus << 8 | devfn).
    var sid: UInt16 { UInt16(bus) << 8 | UInt16(slot) << 3 | UInt16(function) }
    /// `00:05.0` as Linux prints it in fault lines.
    var shortBDF: String { "\(Hex.digits(bus, width: 2)):\(Hex.digits(slot, width: 2)).\(function)" }

    static func build(from metadata: TraceMetadata) -> [DeviceFacts] {
        var groupDomain: [Int: Int] = [:]
        var nextDomain = 0
        var out: [DeviceFacts] = []
        var virtioCount = 0
        let order = metadata.devices.indices.sorted { metadata.devices[$0].name < metadata.devices[$1].name }
        var virtioIndex: [Int: Int] = [:]
        for i in order {
            let d = metadata.devices[i]
            if d.virtioType != nil || d.vendorID == 0x1AF4 {
                virtioIndex[i] = virtioCount
                virtioCount += 1
            }
        }
        let behind = IOMMUAttachment.behindIOMMU(metadata)
        for (i, d) in metadata.devices.enumerated() {
            let (b, s, f) = parseBDF(d.name)
            let isVirtio = d.virtioType != nil || d.vendorID == 0x1AF4
            var transport = d.transport
            if transport == nil, let id = d.deviceID, isVirtio {
                transport = id >= 0x1040 ? .modern : .transitional
            }
            // iommu_platform: the metadata, else feature bit 33 as offered, else inferred: QEMU allows it only on
            // modern-only devices, and a modern-only virtio device in a VM with a vIOMMU is taken to have it
            // (the recorded scenario's fidelity check then shows whether that was right).
            var platform = d.iommuPlatform ?? d.featuresOffered.map { $0 & (1 << 33) != 0 }
            var inferred = false
            if platform == nil && isVirtio {
                let viommu = metadata.capture.viommu.map { $0 != "none" } ?? false
                platform = viommu && transport == .modern
                inferred = true
            }
            if transport == nil && isVirtio { transport = platform == true ? .modern : .transitional }
            let domain: Int
            if let g = d.iommuGroup {
                if let known = groupDomain[g] {
                    domain = known
                } else {
                    domain = nextDomain
                    groupDomain[g] = domain
                    nextDomain += 1
                }
            } else {
                domain = nextDomain
                nextDomain += 1
            }
            let driver = d.driver ?? (d.virtioType.map { "virtio_\($0 == "block" ? "blk" : $0)" } ?? "pci")
            out.append(
                DeviceFacts(
                    index: i, name: d.name, bus: b, slot: s, function: f, isVirtio: isVirtio,
                    transport: transport ?? .modern, iommuPlatform: platform ?? false, iommuPlatformInferred: inferred,
                    behindIOMMU: behind[i],
                    domain: domain, driverName: driver, virtioName: "virtio\(virtioIndex[i] ?? 0)",
                    swiotlbForced: metadata.capture.swiotlbForced == true))
        }
        return out
    }

    /// Parses `0000:00:02.0`, `00:02.0` or `00:02.00` (QEMU's form); unknown parts are zero.
    static func parseBDF(_ name: String) -> (UInt8, UInt8, UInt8) {
        let parts = name.split(separator: ":")
        guard parts.count >= 2 else { return (0, 0, 0) }
        let bus = UInt8(parts[parts.count - 2], radix: 16) ?? 0
        let df = parts[parts.count - 1].split(separator: ".")
        let dev = df.first.flatMap { UInt8($0, radix: 16) } ?? 0
        let fn = df.count > 1 ? (UInt8(df[1], radix: 16) ?? 0) : 0
        return (bus, dev, fn & 7)
    }
}

/// The scenario the trace was recorded under, inferred from its capture facts.
public enum RecordedScenario {
    /// The recorded kernel model (by `uname -r`) and QEMU mode (by vIOMMU kind and per-device
    /// `iommu_platform`), or nil with the reason when the facts do not say enough.
    public static func infer(metadata: TraceMetadata, catalog: ModelCatalog) -> Result<Scenario, ModelError> {
        guard let release = metadata.capture.kernelRelease else {
            return .failure(.badScenario("recorded", reason: "the trace does not record the guest kernel release"))
        }
        guard let kernel = catalog.kernel(forRelease: release) else {
            return .failure(.badScenario("recorded", reason: "no kernel model covers release \(release)"))
        }
        let devices = DeviceFacts.build(from: metadata)
        let anyPlatform = devices.contains { $0.isVirtio && $0.iommuPlatform }
        let viommu = metadata.capture.viommu ?? "none"
        // Virtio devices the guest's IOMMU does not cover although others are (a bypass_iommu bus).
        let outside = devices.filter { $0.isVirtio && !$0.behindIOMMU }
        var modeID: String
        switch (viommu, anyPlatform) {
        case ("none", false): modeID = "qemu-noiommu"
        case ("none", true): modeID = "qemu-cc-no-viommu"
        case ("intel-iommu", true): modeID = "qemu-viommu-virtio-translated"
        case ("intel-iommu", false): modeID = "qemu-viommu-virtio-bypass"
        case ("amd-iommu", _): modeID = "qemu-amd-iommu"
        case ("smmuv3", _): modeID = "qemu-smmuv3"
        case ("virtio-iommu", _): modeID = "qemu-virtio-iommu"
        default:
            return .failure(.badScenario("recorded", reason: "no mode model for vIOMMU '\(viommu)'"))
        }
        if viommu == "intel-iommu" {
            if IOMMUAttachment.dmaTranslationOff(metadata) {
                modeID = "qemu-ir-only"
            } else if !outside.isEmpty && !IOMMUAttachment.noneAttached(metadata) {
                modeID =
                    outside.contains { $0.iommuPlatform } ? "qemu-viommu-bus-bypass-platform" : "qemu-viommu-bus-bypass"
            }
        }
        guard let mode = catalog.modes[modeID] else {
            return .failure(.unknownModel(kind: "qemu-mode", id: modeID, known: catalog.modeIDs))
        }
        // The recorded release and QEMU version select the models' version rules (a 7.2 capture of a 6.1
        // guest is `linux-6.1@...` without suffixes); versions outside a model's range keep its default.
        let resolvedKernel = (try? kernel.resolved(release: release)) ?? kernel
        let qemu = metadata.capture.qemuVersion.flatMap(ModelVersions.canonical)
        let machine = metadata.capture.machine.flatMap(ModelVersions.canonical)
        let resolvedMode =
            (try? mode.resolved(qemu: qemu, machine: qemu == nil ? nil : machine))
            ?? (try? mode.resolved(qemu: qemu, machine: nil)) ?? mode
        // A vIOMMU no guest driver attached a device to: the guest IOMMU is off in effect (IOMMUAttachment).
        let setting: GuestIOMMUSetting? =
            IOMMUAttachment.noneAttached(metadata) && modeID != "qemu-ir-only" ? .off : nil
        return .success(Scenario(kernel: resolvedKernel, mode: resolvedMode, guestIOMMU: setting))
    }
}
