import Models
import TraceFormat

/// Why a translated device access failed, independent of the IOMMU architecture.
enum FaultCause: UInt8, Sendable {
    /// The device has no context entry / device-table entry / STE / attached domain.
    case noContext
    /// The address is beyond the vIOMMU's input address width.
    case beyondWidth
    /// No PTE, or a PTE without read permission, for a read.
    case read
    /// No PTE, or a PTE without write permission, for a write.
    case write
}

/// Reason codes and log lines per vIOMMU kind and kernel era: QEMU hw/i386/intel_iommu.c vtd_iova_to_slpte()
/// (reasons 2/4/5/6), hw/i386/amd_iommu.h event codes, hw/arm/smmuv3-internal.h SMMUEventType; Linux
/// drivers/iommu/dmar.c dmar_fault_do_one(), amd_iommu.c iommu_print_event(), arm-smmu-v3.c event dump and
/// virtio-iommu.c viommu_fault_handler() of each era (the kernel model's `dmesg` and its `sources`).
enum FaultFormat {
    /// The reason code in the vIOMMU's own numbering.
    static func reason(_ cause: FaultCause, viommu: String) -> UInt32 {
        switch viommu {
        case "amd-iommu":
            // Event types: ILLEGAL_DEV_TABLE_ENTRY 0x1, IO_PAGE_FAULT 0x2.
            return cause == .noContext ? 0x1 : 0x2
        case "smmuv3":
            switch cause {
            case .noContext: return 0x04  // C_BAD_STE
            case .beyondWidth: return 0x11  // F_ADDR_SIZE
            case .read, .write: return 0x10  // F_TRANSLATION
            }
        case "virtio-iommu":
            return cause == .noContext ? 1 : 2  // VIRTIO_IOMMU_FAULT_R_DOMAIN / _R_MAPPING ("page")
        default:
            switch cause {
            case .noContext: return 0x02
            case .beyondWidth: return 0x04
            case .read: return 0x06
            case .write: return 0x05
            }
        }
    }

    /// Linux's `dma_remap_fault_reasons[]` text for the VT-d codes the engine produces.
    static func vtdReasonText(_ r: UInt32) -> String {
        switch r {
        case 0x02: "Present bit in context entry is clear"
        case 0x04: "Access beyond MGAW"
        case 0x05: "PTE Write access is not set"
        case 0x06: "PTE Read access is not set"
        default: "Unknown"
        }
    }

    static func smmuName(_ r: UInt32) -> String {
        switch r {
        case 0x04: "C_BAD_STE"
        case 0x10: "F_TRANSLATION"
        case 0x11: "F_ADDR_SIZE"
        case 0x13: "F_PERMISSION"
        default: "UNKNOWN"
        }
    }

    /// The lines the guest kernel prints for one recorded fault (its dmesg era).
    static func guestLines(
        reason r: UInt32, address: UInt64, write: Bool, device d: DeviceFacts, viommu: String, kernel k: KernelModel,
        eventLog: QemuModeModel.EventLog = .valid
    ) -> [String] {
        let page = address & ~0xFFF
        if eventLog == .garbled { return [] }  // the guest decodes an undefined event: no line is predicted
        switch viommu {
        case "amd-iommu":
            let flags = write ? "0x0020" : "0x0000"
            let type = r == 0x1 ? "ILLEGAL_DEV_TABLE_ENTRY" : "IO_PAGE_FAULT"
            let dom = "0x" + Hex.digits(UInt64(d.domain + 1), width: 4)
            switch k.dmesg.amdvi {
            case "4.4":
                if r == 0x1 {  // 4.x iommu_print_event(): ILLEGAL_DEV_TABLE_ENTRY has no domain=
                    return [
                        "AMD-Vi: Event logged [\(type) device=\(d.shortBDF) address=0x\(Hex.digits(address, width: 16)) flags=\(flags)]"
                    ]
                }
                return [
                    "AMD-Vi: Event logged [\(type) device=\(d.shortBDF) domain=\(dom) address=0x\(Hex.digits(address, width: 16)) flags=\(flags)]"
                ]
            default:
                return [
                    "\(d.driverName) \(d.name): AMD-Vi: Event logged [\(type) domain=\(dom) address=\(Hex.prefixed(address)) flags=\(flags)]"
                ]
            }
        case "smmuv3":
            let q0 = UInt64(r) | UInt64(d.sid) << 32
            // RnW (bit 35) and CLASS (bits 41:40) = SMMU_CLASS_IN (2) for a translation fault: qemu v10.0.13
            // hw/arm/smmuv3.c smmuv3_record_event() EVT_SET_RNW / EVT_SET_CLASS(info->u.f_walk_eabt.class).
            let q1: UInt64 = (write ? 0 : 1 << 35) | (r == 0x04 ? 0 : 2 << 40)
            var lines = ["arm-smmu-v3 arm-smmu-v3.0.auto: event 0x\(Hex.digits(UInt64(r), width: 2)) received:"]
            for q in [q0, q1, address, 0] {
                lines.append("arm-smmu-v3 arm-smmu-v3.0.auto: \t0x\(Hex.digits(q, width: 16))")
            }
            if k.dmesg.smmuv3 == "decoded" {
                lines.append(
                    "arm-smmu-v3 arm-smmu-v3.0.auto: event: \(smmuName(r)) client: \(d.name) sid: \(Hex.prefixed(UInt64(d.sid))) ssid: 0x0 iova: \(Hex.prefixed(address)) ipa: 0x0"
                )
                // arm_smmu_dump_event(): the second line only for translation/address/access/permission faults
                if r != 0x04 {
                    // event_class_str[2] for CLASS_IN; unprivileged data access (PnU, InD clear); stage 1
                    lines.append(
                        "arm-smmu-v3 arm-smmu-v3.0.auto: unpriv data \(write ? "write" : "read") s1 \"Input address caused fault\" stag: 0x0"
                    )
                }
            }
            return lines
        case "virtio-iommu":
            let what = r == 1 ? "domain" : "page"
            return ["virtio_iommu: \(what) fault from EP \(d.sid) at \(Hex.prefixed(address)) [\(write ? "W" : "R")]"]
        default:
            let type = write ? "DMA Write" : "DMA Read"
            let text = vtdReasonText(r)
            let dec = r < 100 ? (r < 10 ? "0\(r)" : "\(r)") : "\(r)"
            let head = "DMAR: DRHD: handling fault status reg 2"
            switch k.dmesg.vtd {
            case "3.x":  // pr_fmt KBUILD_MODNAME: "dmar: " before the two-line form
                return [
                    "dmar: DRHD: handling fault status reg 2",
                    "dmar: DMAR:[\(type)] Request device [\(d.shortBDF)] fault addr \(Hex.digits(page)) ",
                    "DMAR:[fault reason \(dec)] \(text)"
                ]
            case "4.4":
                return [
                    head, "DMAR: DMAR:[\(type)] Request device [\(d.shortBDF)] fault addr \(Hex.digits(page)) ",
                    "DMAR:[fault reason \(dec)] \(text)"
                ]
            case "4.7":
                return [
                    head,
                    "DMAR: [\(type)] Request device [\(d.shortBDF)] fault addr \(Hex.digits(page)) [fault reason \(dec)] \(text)"
                ]
            case "5.4":
                return [
                    head,
                    "DMAR: [\(type)] Request device [\(d.shortBDF)] PASID ffffffff fault addr \(Hex.digits(page)) [fault reason \(dec)] \(text)"
                ]
            case "5.14":  // commit 719a19335692: [0x%02x:0x%02x.%d]
                let dev =
                    "0x\(Hex.digits(UInt64(d.bus), width: 2)):0x\(Hex.digits(UInt64(d.slot), width: 2)).\(d.function)"
                return [
                    head,
                    "DMAR: [\(type) NO_PASID] Request device [\(dev)] fault addr \(Hex.prefixed(page)) [fault reason 0x\(Hex.digits(UInt64(r), width: 2))] \(text)"
                ]
            default:
                return [
                    head,
                    "DMAR: [\(type) NO_PASID] Request device [\(d.shortBDF)] fault addr \(Hex.prefixed(page)) [fault reason 0x\(Hex.digits(UInt64(r), width: 2))] \(text)"
                ]
            }
        }
    }

    /// What of the kernel model ``guestLines(reason:address:write:device:viommu:kernel:eventLog:)`` reads under
    /// `viommu` (part of ``SimulationKey``: keep the two in step).
    static func formatKey(kernel k: KernelModel, viommu: String) -> String {
        switch viommu {
        case "amd-iommu": "amdvi=" + k.dmesg.amdvi
        case "smmuv3": "smmuv3=" + k.dmesg.smmuv3
        case "virtio-iommu": ""
        default: "vtd=" + k.dmesg.vtd
        }
    }

    /// The line QEMU traces for every fault (its trace-events format).
    static func hostLine(reason r: UInt32, address: UInt64, write: Bool, device d: DeviceFacts, viommu: String)
        -> String
    {
        switch viommu {
        case "amd-iommu": return "amdvi_page_fault addr \(Hex.prefixed(address))"
        case "smmuv3": return "smmuv3_record_event \(smmuName(r)) sid=\(Hex.prefixed(UInt64(d.sid)))"
        case "virtio-iommu":
            return
                "virtio_iommu_report_fault reason \(r) flags \(write ? 2 : 1) endpoint \(d.sid) addr \(Hex.prefixed(address))"
        default:
            return
                "vtd_dmar_fault sid \(Hex.prefixed(UInt64(d.sid))) fault \(r) addr \(Hex.prefixed(address)) write \(write ? 1 : 0)"
        }
    }
}
