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
    /// One device's context/device-table entry (`vtd_inv_desc_cc_device(s)`, `amdvi_devtab_inval`); the
    /// source id is in ``Event/aux``, the device only when another event already registered it.
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
        device(sid: Self.sid(bus: bus, slot: slot, function: function), sink: &sink)
    }

    static func sid(bus: UInt64, slot: UInt64, function: UInt64) -> UInt16 {
        UInt16(truncatingIfNeeded: (bus & 0xFF) << 8 | (slot & 0x1F) << 3 | (function & 0x7))
    }

    /// A context/device-table invalidation names a source id, not a device the trace has seen: Linux 5.10's
    /// AMD driver invalidates all 65,536 device-table entries at init (QEMU 7.2 amd-iommu, no invalidate-all),
    /// which registered 65,536 devices (and overflowed the 16-bit device index). The sid goes into `aux`;
    /// the device is named only when already registered by an event that shows it exists.
    mutating func invalidatedContext(_ e: inout Event, sid: UInt16) {
        e.aux = UInt32(sid)
        e.device = devices[sid] ?? Event.noDevice
    }

    /// `0000:00:05.0` for sid 0x28.
    static func pciName(sid: UInt16) -> String {
        "0000:" + Hex.digits(sid >> 8, width: 2) + ":" + Hex.digits((sid >> 3) & 0x1F, width: 2) + "." + String(sid & 7)
    }

    private mutating func noteIOMMU(_ kind: String) { if viommu == nil { viommu = kind } }

    /// Maps one event by name; `template` carries timestamp, clock, source and position.
    mutating func map(_ name: String, _ a: QEMUEventArguments, template: Event, sink: inout some EventSink) throws
        -> Outcome
    {
        guard let event = MappedEvent(rawValue: name) else { return Self.classify(name) }
        try map(event, a, template: template, sink: &sink)
        return .mapped
    }

    /// `ignored` for the families the importers read, `unknown` otherwise.
    static func classify(_ name: String) -> Outcome { isKnownFamily(name) ? .ignored : .unknown }

    /// Maps one event resolved to a ``MappedEvent`` (no string comparisons on the hot path).
    mutating func map(_ event: MappedEvent, _ a: QEMUEventArguments, template: Event, sink: inout some EventSink) throws
    {
        var e = template
        func int(_ n: String) -> UInt64 { a.int(n) ?? 0 }
        func u32(_ n: String) -> UInt32 { UInt32(truncatingIfNeeded: a.int(n) ?? 0) }
        func sid(_ n: String) -> UInt16 { UInt16(truncatingIfNeeded: a.int(n) ?? 0) }
        switch event {
        // MARK: Intel VT-d
        case .vtdDmarTranslate:
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
        case .vtdTranslatePt:
            noteIOMMU("intel-iommu")
            e.kind = .hostTranslate
            e.device = device(sid: sid("sid"), sink: &sink)
            e.address = int("addr")
            e.address2 = int("addr")
            e.detail = Permissions([.read, .write]).rawValue
        case .vtdDmarFault:
            noteIOMMU("intel-iommu")
            e.kind = .hostFault
            e.device = device(sid: sid("sid"), sink: &sink)
            e.address = int("addr")
            e.aux = u32("fault")
            e.detail = FaultSource.vtd.rawValue
            if int("is_write") != 0 { e.eventFlags.insert(.write) }
        case .vtdIotlbPageUpdate, .vtdIotlbPageHit:
            noteIOMMU("intel-iommu")
            let s = sid("sid")
            let addr = int("addr")
            let slpte = int("slpte")
            e.kind = event == .vtdIotlbPageUpdate ? .hostIotlbUpdate : .hostIotlbHit
            e.device = device(sid: s, sink: &sink)
            e.address = addr
            e.address2 = (slpte & 0x000F_FFFF_FFFF_F000) | (addr & 0xFFF)
            e.size = 4096
            e.aux = u32("domain")
            e.detail = UInt8(slpte & 3)
            lastIOTLB[s] = (page: addr & ~0xFFF, perms: e.detail, domain: e.aux)
        case .vtdSwitchAddressSpace:
            noteIOMMU("intel-iommu")
            e.kind = .hostAddressSpace
            e.device = device(bus: int("bus"), slot: int("slot"), function: int("fn"), sink: &sink)
            e.aux = int("on") != 0 ? 1 : 0
        case .vtdIotlbCcHit, .vtdIotlbCcUpdate:
            noteIOMMU("intel-iommu")
            e.kind = .hostContext
            e.device = device(
                sid: UInt16(truncatingIfNeeded: (int("bus") & 0xFF) << 8 | (int("devfn") & 0xFF)), sink: &sink)
            e.aux = UInt32((int("high") >> 8) & 0xFFFF)
            e.aux2 = UInt32(int("low") & 0xFFF)
        case .vtdCeNotPresent:
            noteIOMMU("intel-iommu")
            e.kind = .hostContext
            e.device = device(
                sid: UInt16(truncatingIfNeeded: (int("bus") & 0xFF) << 8 | (int("devfn") & 0xFF)), sink: &sink)
            e.eventFlags.insert(.error)
        case .vtdReNotPresent:
            e.kind = .hostContext
            e.eventFlags.insert(.error)
        case .vtdReplayCeValid:
            e.kind = .hostContext
            e.device = device(bus: int("bus"), slot: int("dev"), function: int("fn"), sink: &sink)
            e.aux = u32("domain")
            e.aux2 = UInt32(int("lo") & 0xFFF)
        case .vtdReplayCeInvalid:
            e.kind = .hostContext
            e.device = device(bus: int("bus"), slot: int("dev"), function: int("fn"), sink: &sink)
            e.eventFlags.insert(.error)
        case .vtdInvDescIotlbGlobal:
            e.kind = .hostInvalidate
            e.aux2 = HostInvalidation.iotlbGlobal.rawValue
        case .vtdInvDescIotlbDomain, .vtdInvDescIotlbPasid:
            e.kind = .hostInvalidate
            e.aux = u32("domain")
            e.aux2 = HostInvalidation.iotlbDomain.rawValue
        case .vtdInvDescIotlbPages, .vtdInvDescIotlbPasidPages:
            e.kind = .hostInvalidate
            e.address = int("addr")
            let mask = int("mask") & 0x3F
            e.size = mask < 52 ? UInt64(4096) << mask : 0
            e.aux = u32("domain")
            e.aux2 = HostInvalidation.iotlbPages.rawValue
        case .vtdInvDescCcGlobal:
            e.kind = .hostInvalidate
            e.aux2 = HostInvalidation.contextGlobal.rawValue
        case .vtdInvDescCcDomain:
            e.kind = .hostInvalidate
            e.aux = u32("domain")
            e.aux2 = HostInvalidation.contextDomain.rawValue
        case .vtdInvDescCcDevice:
            e.kind = .hostInvalidate
            invalidatedContext(&e, sid: Self.sid(bus: int("bus"), slot: int("dev"), function: int("fn")))
            e.aux2 = HostInvalidation.contextDevice.rawValue
        case .vtdInvDescCcDevices:
            e.kind = .hostInvalidate
            invalidatedContext(&e, sid: sid("sid"))
            e.aux2 = HostInvalidation.contextDevice.rawValue
        case .vtdIotlbReset:
            e.kind = .hostInvalidate
            e.aux2 = HostInvalidation.iotlbReset.rawValue
        case .vtdContextCacheReset:
            noteIOMMU("intel-iommu")
            e.kind = .hostInvalidate
            e.aux2 = HostInvalidation.contextReset.rawValue
        case .vtdAsUnmapWhole:
            e.kind = .hostInvalidate
            e.device = device(bus: int("bus"), slot: int("slot"), function: int("fn"), sink: &sink)
            e.address = int("iova")
            e.size = int("size")
            e.aux2 = HostInvalidation.addressSpaceUnmap.rawValue

        // MARK: AMD-Vi ("gpa"/"hpa" in QEMU's text are IOVA and translated guest-physical)
        case .amdviTranslationResult, .amdviIotlbHit:
            noteIOMMU("amd-iommu")
            e.kind = event == .amdviIotlbHit ? .hostIotlbHit : .hostTranslate
            e.device = device(bus: int("bus"), slot: int("slot"), function: int("func"), sink: &sink)
            e.address = int("addr")
            e.address2 = int("txaddr")
            if event == .amdviTranslationResult && e.address2 == 0 {
                // QEMU 7.2 amdvi_page_walk() stops on a zero PTE and leaves translated_addr 0 with perm
                // IOMMU_NONE: the access was blocked, and no amdvi_page_fault is traced. Record it as a host
                // fault (IO_PAGE_FAULT 0x2) so replay compares it; the guest never hears of it.
                e.kind = .hostFault
                e.aux = 0x2
                e.detail = FaultSource.amdvi.rawValue
            }
        case .amdviCacheUpdate:
            noteIOMMU("amd-iommu")
            e.kind = .hostIotlbUpdate
            e.device = device(bus: int("bus"), slot: int("slot"), function: int("func"), sink: &sink)
            e.address = int("gpa")
            e.address2 = int("txaddr")
            e.size = 4096
            e.aux = u32("domid")
        case .amdviPageFault, .amdviModeInvalid:
            noteIOMMU("amd-iommu")
            e.kind = .hostFault
            e.address = int("addr")
            e.detail = FaultSource.amdvi.rawValue
            if event == .amdviModeInvalid { e.eventFlags.insert(.error) }
        case .amdviPagesInval:
            e.kind = .hostInvalidate
            e.aux = u32("domid")
            e.aux2 = HostInvalidation.iotlbDomain.rawValue
        case .amdviIotlbInval, .amdviAllInval:
            e.kind = .hostInvalidate
            e.aux2 = HostInvalidation.iotlbGlobal.rawValue
        case .amdviDevtabInval:
            e.kind = .hostInvalidate
            invalidatedContext(&e, sid: Self.sid(bus: int("bus"), slot: int("slot"), function: int("func")))
            e.aux2 = HostInvalidation.contextDevice.rawValue

        // MARK: ARM SMMUv3
        case .smmuv3TranslateSuccess:
            noteIOMMU("smmuv3")
            e.kind = .hostTranslate
            e.device = device(sid: sid("sid"), sink: &sink)
            e.address = int("iova")
            e.address2 = int("translated")
            e.detail = UInt8(int("perm") & 3)
        case .smmuv3TranslateAbort:
            noteIOMMU("smmuv3")
            e.kind = .hostFault
            e.device = device(sid: sid("sid"), sink: &sink)
            e.address = int("addr")
            e.detail = FaultSource.smmuv3.rawValue
            if int("is_write") != 0 { e.eventFlags.insert(.write) }
        case .smmuv3TranslateBypass, .smmuv3TranslateDisable:
            noteIOMMU("smmuv3")
            e.kind = .hostAccess
            e.device = device(sid: sid("sid"), sink: &sink)
            e.address = int("addr")
            if int("is_write") != 0 { e.eventFlags.insert(.write) }
        case .smmuv3S1RangeInval:
            e.kind = .hostInvalidate
            e.address = int("addr")
            let tg = int("tg")
            let pages = int("num_pages")
            let shift: UInt64 = tg >= 1 && tg <= 3 ? 10 + 2 * tg : 12
            e.size = pages < (1 << 40) ? pages << shift : 0
            e.aux = u32("asid")
            e.aux2 = HostInvalidation.iotlbPages.rawValue
        case .smmuIotlbInvIova:
            e.kind = .hostInvalidate
            e.address = int("addr")
            e.aux = u32("asid")
            e.aux2 = HostInvalidation.iotlbPages.rawValue
        case .smmuIotlbLookupHit:
            e.kind = .hostIotlbHit
            e.address = int("addr")
            e.aux = u32("asid")

        // MARK: virtio-iommu
        case .virtioIommuAttach:
            noteIOMMU("virtio-iommu")
            e.kind = .hostContext
            e.device = device(sid: UInt16(truncatingIfNeeded: int("ep_id")), sink: &sink)
            e.aux = u32("domain_id")
        case .virtioIommuMap:
            noteIOMMU("virtio-iommu")
            e.kind = .hostIotlbUpdate
            e.address = int("virt_start")
            e.address2 = int("phys_start")
            e.size = int("virt_end") &- int("virt_start") &+ 1
            e.aux = u32("domain_id")
            e.detail = UInt8(int("flags") & 3)
        case .virtioIommuUnmap:
            e.kind = .hostInvalidate
            e.address = int("virt_start")
            e.size = int("virt_end") &- int("virt_start") &+ 1
            e.aux = u32("domain_id")
            e.aux2 = HostInvalidation.iotlbPages.rawValue
        case .virtioIommuTranslateOut:
            noteIOMMU("virtio-iommu")
            e.kind = .hostTranslate
            e.device = device(sid: sid("sid"), sink: &sink)
            e.address = int("virt_addr")
            e.address2 = int("phys_addr")
        case .virtioIommuReportFault:
            noteIOMMU("virtio-iommu")
            e.kind = .hostFault
            e.device = device(sid: UInt16(truncatingIfNeeded: int("endpoint")), sink: &sink)
            e.address = int("addr")
            e.aux = u32("reason")
            e.detail = FaultSource.virtioIOMMU.rawValue
            if int("flags") & 2 != 0 { e.eventFlags.insert(.write) }

        // MARK: virtio
        case .virtqueuePop:
            e.kind = .virtqueuePop
            e.address = int("vq")
            e.address2 = int("elem")
            e.aux = u32("in_num")
            e.aux2 = u32("out_num")
        case .virtqueueFill:
            e.kind = .virtqueueFill
            e.address = int("vq")
            e.address2 = int("elem")
            e.size = int("len")
            e.aux = u32("idx")
        case .virtqueueFlush:
            e.kind = .virtqueueFlush
            e.address = int("vq")
            e.aux2 = u32("count")
        case .virtioQueueNotify:
            e.kind = .virtqueueNotify
            e.address = int("vdev")
            e.address2 = int("vq")
            e.aux = u32("n")
        case .virtioNotify, .virtioNotifyIrqfd:
            e.kind = .virtioNotify
            e.address = int("vdev")
            e.address2 = int("vq")
        case .virtioSetStatus:
            e.kind = .virtioSetStatus
            e.address = int("vdev")
            e.address2 = int("val")
        }
        try sink.append(e)
    }

    /// Whether `name` belongs to a family the importers read (for events with no definition at hand).
    static func isKnownFamily(_ name: String) -> Bool { families.contains { name.hasPrefix($0) } }
}

/// The QEMU events ``QEMUEventMapper`` turns into ``Event``s (raw value: the trace event name).
enum MappedEvent: String, CaseIterable, Sendable {
    case vtdDmarTranslate = "vtd_dmar_translate"
    case vtdTranslatePt = "vtd_translate_pt"
    case vtdDmarFault = "vtd_dmar_fault"
    case vtdIotlbPageUpdate = "vtd_iotlb_page_update"
    case vtdIotlbPageHit = "vtd_iotlb_page_hit"
    case vtdSwitchAddressSpace = "vtd_switch_address_space"
    case vtdIotlbCcHit = "vtd_iotlb_cc_hit"
    case vtdIotlbCcUpdate = "vtd_iotlb_cc_update"
    case vtdCeNotPresent = "vtd_ce_not_present"
    case vtdReNotPresent = "vtd_re_not_present"
    case vtdReplayCeValid = "vtd_replay_ce_valid"
    case vtdReplayCeInvalid = "vtd_replay_ce_invalid"
    case vtdInvDescIotlbGlobal = "vtd_inv_desc_iotlb_global"
    case vtdInvDescIotlbDomain = "vtd_inv_desc_iotlb_domain"
    case vtdInvDescIotlbPasid = "vtd_inv_desc_iotlb_pasid"
    case vtdInvDescIotlbPages = "vtd_inv_desc_iotlb_pages"
    case vtdInvDescIotlbPasidPages = "vtd_inv_desc_iotlb_pasid_pages"
    case vtdInvDescCcGlobal = "vtd_inv_desc_cc_global"
    case vtdInvDescCcDomain = "vtd_inv_desc_cc_domain"
    case vtdInvDescCcDevice = "vtd_inv_desc_cc_device"
    case vtdInvDescCcDevices = "vtd_inv_desc_cc_devices"
    case vtdIotlbReset = "vtd_iotlb_reset"
    case vtdContextCacheReset = "vtd_context_cache_reset"
    case vtdAsUnmapWhole = "vtd_as_unmap_whole"
    case amdviTranslationResult = "amdvi_translation_result"
    case amdviIotlbHit = "amdvi_iotlb_hit"
    case amdviCacheUpdate = "amdvi_cache_update"
    case amdviPageFault = "amdvi_page_fault"
    case amdviModeInvalid = "amdvi_mode_invalid"
    case amdviPagesInval = "amdvi_pages_inval"
    case amdviIotlbInval = "amdvi_iotlb_inval"
    case amdviAllInval = "amdvi_all_inval"
    case amdviDevtabInval = "amdvi_devtab_inval"
    case smmuv3TranslateSuccess = "smmuv3_translate_success"
    case smmuv3TranslateAbort = "smmuv3_translate_abort"
    case smmuv3TranslateBypass = "smmuv3_translate_bypass"
    case smmuv3TranslateDisable = "smmuv3_translate_disable"
    case smmuv3S1RangeInval = "smmuv3_s1_range_inval"
    case smmuIotlbInvIova = "smmu_iotlb_inv_iova"
    case smmuIotlbLookupHit = "smmu_iotlb_lookup_hit"
    case virtioIommuAttach = "virtio_iommu_attach"
    case virtioIommuMap = "virtio_iommu_map"
    case virtioIommuUnmap = "virtio_iommu_unmap"
    case virtioIommuTranslateOut = "virtio_iommu_translate_out"
    case virtioIommuReportFault = "virtio_iommu_report_fault"
    case virtqueuePop = "virtqueue_pop"
    case virtqueueFill = "virtqueue_fill"
    case virtqueueFlush = "virtqueue_flush"
    case virtioQueueNotify = "virtio_queue_notify"
    case virtioNotify = "virtio_notify"
    case virtioNotifyIrqfd = "virtio_notify_irqfd"
    case virtioSetStatus = "virtio_set_status"
}
