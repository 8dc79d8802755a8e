import TraceFormat

/// Invalidation kinds in ``Event/aux2`` of ``EventKind/hostInvalidate`` events from the QEMU importers.
public enum HostInvalidation: UInt32, Sendable, CaseIterable {
    /// Whole IOTLB (`vtd_inv_desc_iotlb_global`, `amdvi_all_inval`, `amdvi_iotlb_inval`).
    case iotlbGlobal = 1
    /// All IOTLB entries of one domain (`vtd_inv_desc_iotlb_domain`, `amdvi_pages_inval`).
    case iotlbDomain = 2
    /// A page range of one domain (`vtd_inv_desc_iotlb_pages`, `smmuv3_s1_range_inval`, `virtio_iommu_unmap`).
    case iotlbPages = 3
    /// All context entries (`vtd_inv_desc_cc_global`).
    case contextGlobal = 4
    /// Context entries of one domain (`vtd_inv_desc_cc_domain`).
    case contextDomain = 5
    /// One device's context/device-table entry (`vtd_inv_desc_cc_device(s)`, `amdvi_devtab_inval`).
    case contextDevice = 6
    /// The vIOMMU dropped its whole IOTLB (`vtd_iotlb_reset`).
    case iotlbReset = 7
    /// The vIOMMU dropped its whole context cache (`vtd_context_cache_reset`).
    case contextReset = 8
    /// A device's address space was unmapped as a whole (`vtd_as_unmap_whole`).
    case addressSpaceUnmap = 9
}

/// The one place that turns a QEMU trace event (name + named argument values) into ``Event``s, shared by the
/// log-backend and simpletrace importers. Slot use follows the table on ``Event``; choices the table leaves
/// open:
///
/// - Devices are registered under their Linux name (`0000:00:02.0`) with `sid` = bus << 8 | devfn, so the
///   merge can match them with guest devices; QEMU prints BDFs as `00:02.00` and sids as numbers.
/// - `hostTranslate` from `vtd_dmar_translate` takes permissions and domain from the IOTLB update or hit of
///   the same sid and page just before it (QEMU prints those on the preceding line); size is `mask + 1`.
/// - `hostIotlbUpdate/Hit` (VT-d): address = iova as printed (with in-page offset), address2 = the slpte's page
///   frame plus that offset, size 4096, permissions = slpte bits 0–1.
/// - `hostContext` (VT-d context cache): aux = domain id from the context entry (high bits 8–23), aux2 = the
///   low 12 bits of the entry (present, FPD, translation type); `*_not_present` sets the error flag.
/// - `hostInvalidate`: aux2 is a ``HostInvalidation``.
/// - `virtqueuePop`: address vq, address2 elem, aux in_num, aux2 out_num. `virtqueueFill`: address vq,
///   address2 elem, size len, aux idx. `virtqueueFlush`: address vq, aux2 count. `virtqueueNotify`: address
///   vdev, address2 vq, aux queue index. `virtioNotify`: address vdev, address2 vq. `virtioSetStatus`:
///   address vdev, address2 status. Host pointers identify virtio devices; the merge maps them to devices.
struct QEMUEventMapper {
    /// What became of one event.
    enum Outcome: Equatable {
        case mapped
        /// A known QEMU event that carries nothing for replay (register accesses, queue heads, ...).
        case ignored
        /// Not an event family the importer knows.
        case unknown
    }

    /// Name prefixes of the event families the importers read; other events of these families are `ignored`.
    static let families = ["vtd_", "amdvi_", "smmuv3_", "smmu_", "virtio_", "virtqueue_", "dma_"]

    private var devices: [UInt16: UInt16] = [:]
    /// Last IOTLB update/hit per sid: page, permissions, domain (to complete the next translation).
    private var lastIOTLB: [UInt16: (page: UInt64, perms: UInt8, domain: UInt32)] = [:]
    /// vIOMMU kinds seen, for the capture facts.
    private(set) var viommu: String?

    /// The device with source id `sid`, registered as `0000:bb:dd.f`.
    mutating func device(sid: UInt16, sink: inout some EventSink) -> UInt16 {
        if let d = devices[sid] { return d }
        let d = sink.device(DeviceInfo(name: Self.pciName(sid: sid), sid: sid))
        devices[sid] = d
        return d
    }

    mutating func device(bus: UInt64, slot: UInt64, function: UInt64, sink: inout some EventSink) -> UInt16 {
        device(sid: UInt16(truncatingIfNeeded: (bus & 0xFF) << 8 | (slot & 0x1F) << 3 | (function & 0x7)), sink: &sink)
    }

    /// `0000:00:05.0` for sid 0x28.
    static func pciName(sid: UInt16) -> String {
        "0000:" + hex2(UInt8(sid >> 8)) + ":" + hex2(UInt8((sid >> 3) & 0x1F)) + "." + String(sid & 7)
    }

    private static func hex2(_ v: UInt8) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: [digits[Int(v >> 4)], digits[Int(v & 0xF)]], as: UTF8.self)
    }

    private mutating func noteIOMMU(_ kind: String) { if viommu == nil { viommu = kind } }

    /// Maps one event; `template` carries timestamp, clock, source and position.
    mutating func map(_ name: String, _ a: QEMUEventArguments, template: Event, sink: inout some EventSink) throws -> Outcome {
        var e = template
        func int(_ n: String) -> UInt64 { a.int(n) ?? 0 }
        func u32(_ n: String) -> UInt32 { UInt32(truncatingIfNeeded: a.int(n) ?? 0) }
        func sid(_ n: String) -> UInt16 { UInt16(truncatingIfNeeded: a.int(n) ?? 0) }
        switch name {
        // MARK: Intel VT-d
        case "vtd_dmar_translate":
            noteIOMMU("intel-iommu")
            let s = UInt16(truncatingIfNeeded: (int("bus") & 0xFF) << 8 | (int("slot") & 0x1F) << 3 | (int("func") & 7))
            e.kind = .hostTranslate
            e.device = device(sid: s, sink: &sink)
            e.address = int("iova")
            e.address2 = int("gpa")
            e.size = int("mask") &+ 1
            if let last = lastIOTLB[s], last.page == e.address & ~0xFFF {
                e.detail = last.perms
                e.aux = last.domain
            }
        case "vtd_translate_pt":
            noteIOMMU("intel-iommu")
            e.kind = .hostTranslate
            e.device = device(sid: sid("sid"), sink: &sink)
            e.address = int("addr")
            e.address2 = int("addr")
            e.detail = Permissions([.read, .write]).rawValue
        case "vtd_dmar_fault":
            noteIOMMU("intel-iommu")
            e.kind = .hostFault
            e.device = device(sid: sid("sid"), sink: &sink)
            e.address = int("addr")
            e.aux = u32("fault")
            e.detail = FaultSource.vtd.rawValue
            if int("is_write") != 0 { e.eventFlags.insert(.write) }
        case "vtd_iotlb_page_update", "vtd_iotlb_page_hit":
            noteIOMMU("intel-iommu")
            let s = sid("sid")
            let addr = int("addr")
            let slpte = int("slpte")
            e.kind = name == "vtd_iotlb_page_update" ? .hostIotlbUpdate : .hostIotlbHit
            e.device = device(sid: s, sink: &sink)
            e.address = addr
            e.address2 = (slpte & 0x000F_FFFF_FFFF_F000) | (addr & 0xFFF)
            e.size = 4096
            e.aux = u32("domain")
            e.detail = UInt8(slpte & 3)
            lastIOTLB[s] = (page: addr & ~0xFFF, perms: e.detail, domain: e.aux)
        case "vtd_switch_address_space":
            noteIOMMU("intel-iommu")
            e.kind = .hostAddressSpace
            e.device = device(bus: int("bus"), slot: int("slot"), function: int("fn"), sink: &sink)
            e.aux = int("on") != 0 ? 1 : 0
        case "vtd_iotlb_cc_hit", "vtd_iotlb_cc_update":
            noteIOMMU("intel-iommu")
            e.kind = .hostContext
            e.device = device(sid: UInt16(truncatingIfNeeded: (int("bus") & 0xFF) << 8 | (int("devfn") & 0xFF)), sink: &sink)
            e.aux = UInt32((int("high") >> 8) & 0xFFFF)
            e.aux2 = UInt32(int("low") & 0xFFF)
        case "vtd_ce_not_present":
            noteIOMMU("intel-iommu")
            e.kind = .hostContext
            e.device = device(sid: UInt16(truncatingIfNeeded: (int("bus") & 0xFF) << 8 | (int("devfn") & 0xFF)), sink: &sink)
            e.eventFlags.insert(.error)
        case "vtd_re_not_present":
            e.kind = .hostContext
            e.eventFlags.insert(.error)
        case "vtd_replay_ce_valid":
            e.kind = .hostContext
            e.device = device(bus: int("bus"), slot: int("dev"), function: int("fn"), sink: &sink)
            e.aux = u32("domain")
            e.aux2 = UInt32(int("lo") & 0xFFF)
        case "vtd_replay_ce_invalid":
            e.kind = .hostContext
            e.device = device(bus: int("bus"), slot: int("dev"), function: int("fn"), sink: &sink)
            e.eventFlags.insert(.error)
        case "vtd_inv_desc_iotlb_global":
            e.kind = .hostInvalidate
            e.aux2 = HostInvalidation.iotlbGlobal.rawValue
        case "vtd_inv_desc_iotlb_domain", "vtd_inv_desc_iotlb_pasid":
            e.kind = .hostInvalidate
            e.aux = u32("domain")
            e.aux2 = HostInvalidation.iotlbDomain.rawValue
        case "vtd_inv_desc_iotlb_pages", "vtd_inv_desc_iotlb_pasid_pages":
            e.kind = .hostInvalidate
            e.address = int("addr")
            let mask = int("mask") & 0x3F
            e.size = mask < 52 ? UInt64(4096) << mask : 0
            e.aux = u32("domain")
            e.aux2 = HostInvalidation.iotlbPages.rawValue
        case "vtd_inv_desc_cc_global":
            e.kind = .hostInvalidate
            e.aux2 = HostInvalidation.contextGlobal.rawValue
        case "vtd_inv_desc_cc_domain":
            e.kind = .hostInvalidate
            e.aux = u32("domain")
            e.aux2 = HostInvalidation.contextDomain.rawValue
        case "vtd_inv_desc_cc_device":
            e.kind = .hostInvalidate
            e.device = device(bus: int("bus"), slot: int("dev"), function: int("fn"), sink: &sink)
            e.aux2 = HostInvalidation.contextDevice.rawValue
        case "vtd_inv_desc_cc_devices":
            e.kind = .hostInvalidate
            e.device = device(sid: sid("sid"), sink: &sink)
            e.aux2 = HostInvalidation.contextDevice.rawValue
        case "vtd_iotlb_reset":
            e.kind = .hostInvalidate
            e.aux2 = HostInvalidation.iotlbReset.rawValue
        case "vtd_context_cache_reset":
            noteIOMMU("intel-iommu")
            e.kind = .hostInvalidate
            e.aux2 = HostInvalidation.contextReset.rawValue
        case "vtd_as_unmap_whole":
            e.kind = .hostInvalidate
            e.device = device(bus: int("bus"), slot: int("slot"), function: int("fn"), sink: &sink)
            e.address = int("iova")
            e.size = int("size")
            e.aux2 = HostInvalidation.addressSpaceUnmap.rawValue

        // MARK: AMD-Vi ("gpa"/"hpa" in QEMU's text are IOVA and translated guest-physical)
        case "amdvi_translation_result", "amdvi_iotlb_hit":
            noteIOMMU("amd-iommu")
            e.kind = name == "amdvi_iotlb_hit" ? .hostIotlbHit : .hostTranslate
            e.device = device(bus: int("bus"), slot: int("slot"), function: int("func"), sink: &sink)
            e.address = int("addr")
            e.address2 = int("txaddr")
        case "amdvi_cache_update":
            noteIOMMU("amd-iommu")
            e.kind = .hostIotlbUpdate
            e.device = device(bus: int("bus"), slot: int("slot"), function: int("func"), sink: &sink)
            e.address = int("gpa")
            e.address2 = int("txaddr")
            e.size = 4096
            e.aux = u32("domid")
        case "amdvi_page_fault", "amdvi_mode_invalid":
            noteIOMMU("amd-iommu")
            e.kind = .hostFault
            e.address = int("addr")
            e.detail = FaultSource.amdvi.rawValue
            if name == "amdvi_mode_invalid" { e.eventFlags.insert(.error) }
        case "amdvi_pages_inval":
            e.kind = .hostInvalidate
            e.aux = u32("domid")
            e.aux2 = HostInvalidation.iotlbDomain.rawValue
        case "amdvi_iotlb_inval", "amdvi_all_inval":
            e.kind = .hostInvalidate
            e.aux2 = HostInvalidation.iotlbGlobal.rawValue
        case "amdvi_devtab_inval":
            e.kind = .hostInvalidate
            e.device = device(bus: int("bus"), slot: int("slot"), function: int("func"), sink: &sink)
            e.aux2 = HostInvalidation.contextDevice.rawValue

        // MARK: ARM SMMUv3
        case "smmuv3_translate_success":
            noteIOMMU("smmuv3")
            e.kind = .hostTranslate
            e.device = device(sid: sid("sid"), sink: &sink)
            e.address = int("iova")
            e.address2 = int("translated")
            e.detail = UInt8(int("perm") & 3)
        case "smmuv3_translate_abort":
            noteIOMMU("smmuv3")
            e.kind = .hostFault
            e.device = device(sid: sid("sid"), sink: &sink)
            e.address = int("addr")
            e.detail = FaultSource.smmuv3.rawValue
            if int("is_write") != 0 { e.eventFlags.insert(.write) }
        case "smmuv3_translate_bypass", "smmuv3_translate_disable":
            noteIOMMU("smmuv3")
            e.kind = .hostAccess
            e.device = device(sid: sid("sid"), sink: &sink)
            e.address = int("addr")
            if int("is_write") != 0 { e.eventFlags.insert(.write) }
        case "smmuv3_s1_range_inval":
            e.kind = .hostInvalidate
            e.address = int("addr")
            let tg = int("tg")
            let pages = int("num_pages")
            let shift: UInt64 = tg >= 1 && tg <= 3 ? 10 + 2 * tg : 12
            e.size = pages < (1 << 40) ? pages << shift : 0
            e.aux = u32("asid")
            e.aux2 = HostInvalidation.iotlbPages.rawValue
        case "smmu_iotlb_inv_iova":
            e.kind = .hostInvalidate
            e.address = int("addr")
            e.aux = u32("asid")
            e.aux2 = HostInvalidation.iotlbPages.rawValue
        case "smmu_iotlb_lookup_hit":
            e.kind = .hostIotlbHit
            e.address = int("addr")
            e.aux = u32("asid")

        // MARK: virtio-iommu
        case "virtio_iommu_attach":
            noteIOMMU("virtio-iommu")
            e.kind = .hostContext
            e.device = device(sid: UInt16(truncatingIfNeeded: int("ep_id")), sink: &sink)
            e.aux = u32("domain_id")
        case "virtio_iommu_map":
            noteIOMMU("virtio-iommu")
            e.kind = .hostIotlbUpdate
            e.address = int("virt_start")
            e.address2 = int("phys_start")
            e.size = int("virt_end") &- int("virt_start") &+ 1
            e.aux = u32("domain_id")
            e.detail = UInt8(int("flags") & 3)
        case "virtio_iommu_unmap":
            e.kind = .hostInvalidate
            e.address = int("virt_start")
            e.size = int("virt_end") &- int("virt_start") &+ 1
            e.aux = u32("domain_id")
            e.aux2 = HostInvalidation.iotlbPages.rawValue
        case "virtio_iommu_translate_out":
            noteIOMMU("virtio-iommu")
            e.kind = .hostTranslate
            e.device = device(sid: sid("sid"), sink: &sink)
            e.address = int("virt_addr")
            e.address2 = int("phys_addr")
        case "virtio_iommu_report_fault":
            noteIOMMU("virtio-iommu")
            e.kind = .hostFault
            e.device = device(sid: UInt16(truncatingIfNeeded: int("endpoint")), sink: &sink)
            e.address = int("addr")
            e.aux = u32("reason")
            e.detail = FaultSource.virtioIOMMU.rawValue
            if int("flags") & 2 != 0 { e.eventFlags.insert(.write) }

        // MARK: virtio
        case "virtqueue_pop":
            e.kind = .virtqueuePop
            e.address = int("vq")
            e.address2 = int("elem")
            e.aux = u32("in_num")
            e.aux2 = u32("out_num")
        case "virtqueue_fill":
            e.kind = .virtqueueFill
            e.address = int("vq")
            e.address2 = int("elem")
            e.size = int("len")
            e.aux = u32("idx")
        case "virtqueue_flush":
            e.kind = .virtqueueFlush
            e.address = int("vq")
            e.aux2 = u32("count")
        case "virtio_queue_notify":
            e.kind = .virtqueueNotify
            e.address = int("vdev")
            e.address2 = int("vq")
            e.aux = u32("n")
        case "virtio_notify", "virtio_notify_irqfd":
            e.kind = .virtioNotify
            e.address = int("vdev")
            e.address2 = int("vq")
        case "virtio_set_status":
            e.kind = .virtioSetStatus
            e.address = int("vdev")
            e.address2 = int("val")
        default:
            return Self.families.contains { name.hasPrefix($0) } ? .ignored : .unknown
        }
        try sink.append(e)
        return .mapped
    }

    /// Whether `name` belongs to a family the importers read (for events with no definition at hand).
    static func isKnownFamily(_ name: String) -> Bool { families.contains { name.hasPrefix($0) } }
}
