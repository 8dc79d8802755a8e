import TraceFormat

/// Which devices the guest's IOMMU driver took, read from the guest log: Linux prints
/// `pci 0000:00:02.0: Adding to iommu group 2` (`iommu_group_add_device()`, drivers/iommu/iommu.c, v3.5 to v6.12)
/// for every device an IOMMU driver attaches, after `iommu_subsys_init()` printed `iommu: Default domain type: ...`
/// (a `subsys_initcall`, drivers/iommu/iommu.c since v5.2: before any IOMMU driver's initcall adds a device). A log
/// that holds that line therefore holds every group line of the boot; one that does not tells nothing here.
///
/// Three real configurations show up only so (traces/README.md, cross-version predictions):
/// - QEMU's intel-iommu with `dma-translation=off` advertises no address width; Linux prints `DMAR: dmar0: No
///   supported address widths. Not attempting DMA translation.` and ignores the unit for DMA
///   (drivers/iommu/intel/dmar.c alloc_iommu(), v5.17 onwards; the dmesg importer records it as
///   `viommu.dma-translation=off`): no device is grouped;
/// - a vIOMMU whose guest driver is not loaded (Debian's 6.1 builds virtio-iommu as a module, so a guest without
///   an initramfs carrying it never probes it; QEMU's virtio-iommu `boot-bypass`, default on since 7.0, lets
///   DMA through untranslated): no device is grouped, the guest IOMMU is off in effect;
/// - devices behind a `pxb-pcie` bridge with `bypass_iommu=on` are outside every DRHD scope (QEMU
///   hw/i386/acpi-build.c build_dmar_q35() skips bypass buses): the others are grouped, they are not.
public enum IOMMUAttachment {
    /// The guest log covers the IOMMU core's initialisation (see the type's comment).
    public static func observed(_ m: TraceMetadata) -> Bool {
        m.extra["evidence.guest-iommu"]?.contains("Default domain type") == true
    }

    /// True when the guest translates by policy, a vIOMMU is present, the log covers boot, and yet no device
    /// joined an IOMMU group: no IOMMU driver attached a device, so DMA is untranslated whatever the policy says.
    public static func noneAttached(_ m: TraceMetadata) -> Bool {
        guard let v = m.capture.viommu, v != "none",
            m.capture.guestIOMMU == .translated || m.capture.guestIOMMU == .passthrough,
            observed(m)
        else { return false }
        return !m.devices.contains { $0.iommuGroup != nil }
    }

    /// The DRHD offered no DMA translation (QEMU's `dma-translation=off`, or the guest said so).
    public static func dmaTranslationOff(_ m: TraceMetadata) -> Bool {
        m.capture.viommuProperties["dma-translation"] == "off"
    }

    /// Per device of the metadata: false when the log covers boot, other devices joined IOMMU groups and this
    /// PCI function (seen by the guest: its ids are known) did not; else the metadata's `behindIOMMU` (default
    /// true).
    public static func behindIOMMU(_ m: TraceMetadata) -> [Bool] {
        let grouped = observed(m) && m.devices.contains { $0.iommuGroup != nil }
        return m.devices.map { d in
            if let b = d.behindIOMMU { return b }
            return !(grouped && d.iommuGroup == nil && d.vendorID != nil)
        }
    }

    /// The evidence line for `info` and the replay notes, when the attachment decides something.
    public static func describe(_ m: TraceMetadata) -> [String] {
        var out: [String] = []
        if dmaTranslationOff(m) {
            out.append(
                "dma-translation: off - "
                    + (m.extra["evidence.dma-translation"] ?? "the capture facts (viommu.dma-translation=off)")
                    + ": the vIOMMU remaps interrupts only, DMA is untranslated")
        } else if noneAttached(m) {
            out.append(
                "guest-iommu: off in effect - no device was added to an IOMMU group although the guest log covers the IOMMU core's start (\(m.extra["evidence.guest-iommu"] ?? "")): no IOMMU driver attached a device, DMA is untranslated"
            )
        }
        let behind = behindIOMMU(m)
        for (i, d) in m.devices.enumerated()
        where d.behindIOMMU == nil && !behind[i] && (d.virtioType != nil || d.vendorID == 0x1AF4) {
            out.append(
                "\(d.name) behind the IOMMU: no - never added to an IOMMU group while other devices were: outside every DRHD scope (a bypass_iommu bus)"
            )
        }
        return out
    }
}
