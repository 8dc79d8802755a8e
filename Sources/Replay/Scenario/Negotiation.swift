import Models
import TraceFormat

/// How the driver addresses a device's buffers in one scenario (docs/replay.md, "Driver addressing").
enum Addressing: String, Sendable {
    /// Guest-physical addresses: the driver bypasses the DMA API, or dma-direct.
    case gpa
    /// DMA API with an identity (pass-through) domain: the handle equals the GPA.
    case identity
    /// DMA API with a translated domain: IOVAs from the simulated allocator (or the recorded ones).
    case iova
    /// DMA API bouncing through swiotlb: the handle is the bounce slot's GPA.
    case bounce
    /// swiotlb bounce slot mapped through a translated domain.
    case bounceIOVA = "bounce-iova"
    /// The DMA API fails every mapping (device outside every DRHD with global dma_ops).
    case mappingError = "mapping-error"
}

/// The device-level decision of one scenario for one device: negotiation, probe, addressing, and whether
/// the device's accesses are translated (docs/replay.md). A pure function of the models and the device's
/// recorded facts; the per-access simulation runs on top of it.
struct DevicePlan: Sendable {
    /// Device-level outcome that stops the device from running (probe failed, invisible, mapping failure
    /// during probe, oops hypothesis), or nil when it runs.
    var blocked: OutcomeClass?
    /// Why, in words (rule and source).
    var explanation = ""
    /// Model ids and citations behind the decision.
    var rule = ""
    /// Lines the guest prints at probe.
    var guestLog: [String] = []
    /// Lines QEMU prints or traces at probe.
    var hostLog: [String] = []
    /// Driver addressing.
    var addressing: Addressing = .gpa
    /// Device accesses walk the scenario's page tables.
    var translated = false
    /// The firmware table and the guest believe the device is translated, but it is not.
    var claimed = false
    /// Context entry present before the first mapping.
    var contextAtBoot = true
    /// Bit 33 negotiated.
    var accessPlatformNegotiated = false
    /// Guest IOMMU setting in effect for this device.
    var guestIOMMU: GuestIOMMUSetting = .off
    /// For `--recorded` fidelity and for reuse of recorded IOVAs.
    var sameAddressingAsRecorded = false
    /// Oopses this device's DMA can reach under this scenario (kernel `oopses` whose trigger fits its addressing).
    var oopses: [KernelModel.Oops] = []

    /// The device's addressing for reports; claimed when the platform claims a translation the device does not
    /// get (also for devices without recorded accesses).
    var deviceAddressing: DeviceAddressing {
        if blocked != nil { return DeviceAddressing(base: .none) }
        return DeviceAddressing(base: baseAddressing, claimed: claimed)
    }

    /// ``deviceAddressing`` as reports spell it (`iova-translated`, `gpa-untranslated-claimed`, ...).
    var addressingSummary: String { deviceAddressing.description }

    private var baseAddressing: DeviceAddressing.Base {
        switch addressing {
        case .iova, .bounceIOVA: return translated ? .iovaTranslated : .iovaUntranslated
        case .gpa: return translated ? .gpaTranslated : .gpaUntranslated
        case .identity: return translated ? .gpaTranslated : .gpaIdentity
        case .bounce: return translated ? .bounceTranslated : .bounceGPA
        case .mappingError: return .mappingError
        }
    }

    static func make(device d: DeviceFacts, scenario s: Scenario, recordedSetting: GuestIOMMUSetting?) -> DevicePlan {
        var p = DevicePlan()
        let k = s.kernel, m = s.mode
        let setting = s.effectiveSetting(recorded: recordedSetting)
        var rules = ["kernel \(k.id)", "mode \(m.id)"]
        if s.forcedStrict && (s.guestIOMMU ?? recordedSetting) == .lazy {
            rules.append("lazy forced to strict (\(m.viommu == "amd-iommu" ? "NpCache" : "caching mode"))")
        }
        if s.strictIgnored && (s.guestIOMMU ?? recordedSetting) == .strict {
            rules.append("iommu.strict=1 ignored by \(m.viommu) (flush queue kept)")
        }

        // QEMU side: transport, iommu_platform, which address space the device's DMA uses.
        var transport = d.transport
        if d.isVirtio, let v = s.devices {
            transport = v == .transitional ? .transitional : .modern
            rules.append("devices \(v.rawValue)")
        }
        if d.isVirtio && m.virtio.transport == .modernOnly { transport = .modern }
        var platform = false
        if d.isVirtio {
            switch m.virtio.iommuPlatform {
            case .on: platform = transport == .modern  // QEMU refuses iommu_platform on legacy/transitional devices
            case .off: platform = false
            case .asRecorded: platform = d.iommuPlatform && (s.devices == nil || transport == .modern)
            }
        }
        let onBypassBus = d.isVirtio && m.bypassBus
        let inScope = m.scope != "none" && !onBypassBus && d.behindIOMMU
        let dmaThroughIOMMU: Bool =
            d.isVirtio
            ? (platform && m.hasVIOMMU && !onBypassBus && !m.virtio.passthroughFlag)
            : (m.hasVIOMMU && d.behindIOMMU)

        // Kernel side: which interface the driver uses and what it acks.
        var acked33 = false
        if d.isVirtio {
            if k.virtio.driver == .legacyOnly && transport == .modern {
                p.blocked = .invisible
                p.explanation =
                    "The kernel's virtio-pci driver claims only legacy device ids 0x1000-0x103f; this modern-only device (disable-legacy=on) is never probed."
                p.rule = (rules + ["virtio.driver=legacy-only", "transport=modern"]).joined(separator: "; ")
                return p
            }
            let version1 = !(k.virtio.driver == .legacyOnly || transport == .legacy)
            acked33 = version1 && platform && k.virtio.acksAccessPlatform
            p.accessPlatformNegotiated = acked33
            let prefix = "\(d.driverName) \(d.virtioName): "
            if k.virtio.restrictedMemory && (!version1 || !acked33) {
                let missing = version1 ? "VIRTIO_F_ACCESS_PLATFORM" : "VIRTIO_F_VERSION_1"
                p.blocked = .probeFailed
                p.guestLog = [prefix + "device must provide \(missing)"]
                p.explanation =
                    "A restricted-memory (confidential) guest refuses a device that does not offer \(missing): virtio_features_ok() returns -ENODEV."
                p.rule = (rules + ["virtio.restrictedMemory", "iommu_platform=\(platform ? "on" : "off")"]).joined(
                    separator: "; ")
                return p
            }
            if version1 && platform && !acked33 && m.virtio.accessPlatformMandatory {
                p.blocked = .probeFailed
                p.guestLog = [prefix + "virtio: device refuses features: 3"]
                p.hostLog = [
                    "virtio_set_status vdev \(d.name) val 11 (FEATURES_OK refused: virtio_validate_features() -EFAULT)"
                ]
                p.explanation =
                    "The device offers VIRTIO_F_ACCESS_PLATFORM (bit 33, iommu_platform=on) and makes it mandatory; this kernel cannot ack bit 33, so QEMU refuses FEATURES_OK and the driver reads back status ACKNOWLEDGE|DRIVER = 3."
                p.rule = (rules + ["virtio.acksAccessPlatform=false", "virtio.accessPlatformMandatory"]).joined(
                    separator: "; ")
                return p
            }
            switch k.virtio.dmaAPI {
            case .never, .xenOnly: p.addressing = .gpa
            case .accessPlatform, .accessPlatformOrXen: p.addressing = acked33 ? .iova : .gpa
            case .always: p.addressing = .iova
            }
            rules.append("virtio.dmaAPI=\(k.virtio.dmaAPI.rawValue)")
        } else {
            p.addressing = .iova  // other drivers always use the DMA API
        }
        let usesDMAAPI = p.addressing == .iova

        // Guest IOMMU for this device.
        let driverActive = m.hasVIOMMU && m.dmaTranslation && k.iommu.drivers.contains(m.viommu) && setting != .off
        var guest: GuestIOMMUSetting = driverActive ? setting : .off
        var outside = false
        if driverActive && !inScope {
            outside = true
            guest = .off
        }
        if driverActive && inScope && m.virtio.passthroughFlag && d.isVirtio && acked33 {
            guest = .passthrough  // the kernel sees the flag: identity domain inside the DMA API
            rules.append("passthrough flag seen: identity domain")
        }
        p.guestIOMMU = guest
        p.contextAtBoot = k.iommu.contextAttach == .boot
        if m.viommu == "amd-iommu" && k.iommu.amdDeviceTable == .allValidNoPermissions {
            // 4.x amd_iommu init_device_table_dma(): every device-table entry is valid (no IR/IW) from boot, so an
            // unattached device has a context; QEMU's page walk finds no PTE and drops the access.
            p.contextAtBoot = true
            rules.append("iommu.amdDeviceTable=all-valid-no-permissions")
        }

        if usesDMAAPI {
            if outside && k.iommu.dmaOpsScope == .global {
                let oops = s.hypothesisEnabled("null-deref-no-catch-all-drhd") && m.scope == "explicit"
                p.addressing = .mappingError
                rules.append("iommu.dmaOpsScope=global, device outside every DRHD")
                if oops {
                    let label =
                        (k.hypotheses ?? []).first { $0.id == "null-deref-no-catch-all-drhd" }?.label
                        ?? "HYPOTHESIS (unverified): NULL pointer dereference without a catch-all DRHD"
                    p.blocked = .oopsHypothesis
                    p.explanation = label
                    p.guestLog = ["BUG: kernel NULL pointer dereference (\(label))"]
                    p.rule = (rules + ["hypothesis null-deref-no-catch-all-drhd"]).joined(separator: "; ")
                    return p
                }
                if !d.isVirtio {
                    p.oopses = (k.oopses ?? []).filter { $0.trigger == .unmapAfterFailedMap }
                }
                if d.isVirtio {
                    p.blocked = .mappingFailed
                    p.guestLog = mappingFailureLines(d, kernel: k)
                    p.explanation =
                        "With one global intel dma_ops (until 5.7), a device outside every DRHD gets no domain: dma_alloc_coherent() for the vring fails, so the probe fails."
                    p.rule = rules.joined(separator: "; ")
                    return p
                }
            } else if k.virtio.restrictedMemory {
                p.addressing = guest.translates ? .bounceIOVA : .bounce
            } else if (s.swiotlbForced ?? d.swiotlbForced) && (guest == .off || guest == .passthrough) {
                // `swiotlb=force` on the scenario's (else the recorded) command line: dma-direct bounces every
                // streaming mapping.
                p.addressing = .bounce
                rules.append("swiotlb=force")
            } else if guest == .passthrough {
                p.addressing = .identity
            } else if guest.translates {
                p.addressing = .iova
            } else {
                p.addressing = .gpa  // dma-direct
            }
        }

        // Device side.
        if d.isVirtio || d.behindIOMMU {
            if m.viommu == "virtio-iommu" && dmaThroughIOMMU && !driverActive {
                // Endpoint never attached to a domain: boot-bypass decides.
                p.translated = !m.bootBypass
                p.contextAtBoot = false
            } else {
                p.translated = dmaThroughIOMMU && m.dmaTranslation && driverActive && inScope && guest.translates
            }
        }
        p.claimed = !p.translated && m.hasVIOMMU && m.dmaTranslation && inScope && driverActive && guest.translates
        if p.addressing == .bounce {
            p.oopses = (k.oopses ?? []).filter { $0.trigger == .bounceDoesNotFit }
        }
        if d.isVirtio && p.addressing == .iova && !p.translated && !acked33 {
            // The DMA API is used without bit 33: the vring itself comes from dma_alloc_coherent(), an IOVA, and
            // the device (DMA to plain memory) looks for the ring at that address as a GPA.
            p.blocked = .misdirected
            p.explanation =
                "The kernel uses the DMA API without VIRTIO_F_ACCESS_PLATFORM: the vring is allocated with dma_alloc_coherent() and its IOVA is written to the device, which reads guest memory at that address as a GPA and finds no ring. The device stalls at its first request (I/O timeout) or QEMU reports virtio_error(); no buffer is ever transferred."
            p.rule = (rules + ["virtio.dmaAPI=always", "bit 33 not negotiated", "device DMA untranslated"]).joined(
                separator: "; ")
            return p
        }
        p.rule = rules.joined(separator: "; ")
        return p
    }

    static func mappingFailureLines(_ d: DeviceFacts, kernel k: KernelModel) -> [String] {
        var lines: [String] = []
        if k.dmesg.vtd == "3.x" || k.dmesg.vtd == "4.4" || k.dmesg.vtd == "4.7" {
            lines.append("DMAR: Allocating domain for \(d.name) failed")
        }
        lines.append("\(d.driverName): probe of \(d.virtioName) failed with error -12")
        return lines
    }
}
