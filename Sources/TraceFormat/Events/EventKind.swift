/// The kind of one recorded event. The raw value is the `kind` byte of the on-disk record
/// (`schemas/dmat-format.md` §Records); values are never reused, new kinds get new numbers.
///
/// Field meaning per kind is documented on ``Event`` and in the format spec. Ranges group the sources:
/// 1–15 guest DMA API, 16–23 guest IOMMU core, 24–31 swiotlb, 32–39 guest virtio, 40–47 guest log lines,
/// 48–63 host (QEMU) vIOMMU, 64–79 host virtio, 96–111 bookkeeping.
public enum EventKind: UInt8, Sendable, CaseIterable, Codable, CustomStringConvertible {
    // Guest DMA API (Linux `dma:*` since 6.12, `intel_iommu:*` 5.3–5.10).
    /// A streaming mapping: `dma_map_page/phys/resource/single`, or one segment of `dma_map_sg`.
    case dmaMap = 1
    /// The matching unmap (`dma_unmap_*`).
    case dmaUnmap = 2
    /// A coherent allocation (`dma_alloc`, `dma_alloc_pages`, `dma_alloc_sgt`).
    case dmaAlloc = 3
    /// A coherent free.
    case dmaFree = 4
    /// `dma_sync_single_for_cpu/device` or one segment of `dma_sync_sg_for_*`.
    case dmaSync = 5
    /// A mapping that failed (`dma_map_sg_err`, `dma_alloc_sgt_err`, DMA_MAPPING_ERROR seen).
    case dmaMapError = 6
    /// The driver called `dma_mapping_error()` on a handle (DMA-API debug bookkeeping).
    case dmaErrorCheck = 7

    // Guest IOMMU core (`iommu:*`).
    /// `iommu:map`: IOVA range mapped to a physical range (no device in the tracepoint; attributed at ingest).
    case iommuMap = 16
    /// `iommu:unmap`.
    case iommuUnmap = 17
    /// `iommu:add_device_to_group`.
    case iommuGroupAdd = 18
    /// `iommu:remove_device_from_group`.
    case iommuGroupRemove = 19
    /// `iommu:attach_device_to_domain`.
    case iommuAttach = 20
    /// `iommu:detach_device_from_domain`.
    case iommuDetach = 21
    /// `iommu:io_page_fault`.
    case iommuPageFault = 22

    // swiotlb.
    /// `swiotlb:swiotlb_bounced`: a mapping bounced through the software IOTLB.
    case swiotlbBounce = 24
    /// The bounce buffer could not serve a mapping: `swiotlb buffer is full (sz: N bytes)[, total N (slots),
    /// used N (slots)]` (lib/swiotlb.c 4.x, kernel/dma/swiotlb.c 5.x/6.x) or the older `DMA: Out of SW-IOMMU
    /// space for N bytes` (lib/swiotlb.c 2.6–4.x swiotlb_full()).
    case swiotlbFull = 25

    // Guest virtio (from dmesg or driver-side events).
    /// A device status write seen by the guest side.
    case virtioStatus = 32
    /// Features offered by the device and acked by the driver.
    case virtioFeatures = 33
    /// A probe result; failures carry the kernel's message in the string table.
    case virtioProbe = 34

    // Guest log lines (dmesg).
    /// An IOMMU fault line printed by the guest (Intel DMAR, AMD-Vi, SMMUv3, virtio-iommu).
    case guestFault = 40
    /// A DMA-API debug warning (`DMA-API: ...`).
    case dmaDebugWarning = 41
    /// Any other log line the importer kept (message in the string table).
    case guestLog = 42
    /// An ARM SMMUv2 (arm-smmu) context fault: `Unhandled context fault: fsr=…, iova=…, fsynr=…,
    /// cbfrsynra=…, cb=N` and the Qualcomm/NVIDIA downstream forms.
    case smmuContextFault = 43
    /// An ARM SMMUv3 event-queue record (raw 4-dword dump or the decoded 6.15+ lines): event id, stream id.
    case smmuv3Event = 44
    /// An interrupt-remapping fault (`INTR-REMAP` of Intel VT-d): interrupt index instead of an address.
    case intrRemapFault = 45

    // Host (QEMU) vIOMMU.
    /// A device-side translation: IOVA → GPA with permissions (`vtd_dmar_translate`, `amdvi_translation_result`, ...).
    case hostTranslate = 48
    /// An IOTLB fill (`vtd_iotlb_page_update`).
    case hostIotlbUpdate = 49
    /// An IOTLB hit (`vtd_iotlb_page_hit`).
    case hostIotlbHit = 50
    /// A device's DMA address space switched (`vtd_switch_address_space`): translated or not.
    case hostAddressSpace = 51
    /// A fault recorded by the vIOMMU (`vtd_dmar_fault`, AMD-Vi / SMMUv3 / virtio-iommu events).
    case hostFault = 52
    /// A context-entry lookup or cache fill (`vtd_ce_*`, `vtd_iotlb_cc_*`).
    case hostContext = 53
    /// An invalidation processed by the vIOMMU (IOTLB / context / device-IOTLB).
    case hostInvalidate = 54
    /// A device DMA access recorded directly (e.g. `dma_blk_io`, or the edu device), independent of translation.
    case hostAccess = 55

    // Host virtio.
    /// `virtqueue_pop`: the device took a request.
    case virtqueuePop = 64
    /// `virtqueue_fill`.
    case virtqueueFill = 65
    /// `virtqueue_flush`.
    case virtqueueFlush = 66
    /// `virtio_queue_notify` (guest kicked a queue).
    case virtqueueNotify = 67
    /// `virtio_notify` (device interrupted the guest).
    case virtioNotify = 68
    /// `virtio_set_status` on the host side.
    case virtioSetStatus = 69
    /// The device could not map a descriptor or ring (`virtio_error` "Cannot map desc").
    case virtioMapFailure = 70

    // Bookkeeping.
    /// The input reported lost events (`CPU:n [LOST n EVENTS]`, ring-buffer missed events).
    case lostEvents = 96
    /// Records dropped by an importer (count and reason).
    case droppedRecords = 97
    /// A scatter list that the tracepoint truncated (`[TRUNCATED]`).
    case truncatedList = 98
    /// A clock synchronisation point between two clock domains.
    case clockSync = 99
    /// A free-form marker (workload phase, user annotation).
    case marker = 100

    /// The stable lower-snake name used in text and JSONL output.
    public var name: String {
        switch self {
        case .dmaMap: "dma_map"
        case .dmaUnmap: "dma_unmap"
        case .dmaAlloc: "dma_alloc"
        case .dmaFree: "dma_free"
        case .dmaSync: "dma_sync"
        case .dmaMapError: "dma_map_error"
        case .dmaErrorCheck: "dma_error_check"
        case .iommuMap: "iommu_map"
        case .iommuUnmap: "iommu_unmap"
        case .iommuGroupAdd: "iommu_group_add"
        case .iommuGroupRemove: "iommu_group_remove"
        case .iommuAttach: "iommu_attach"
        case .iommuDetach: "iommu_detach"
        case .iommuPageFault: "iommu_page_fault"
        case .swiotlbBounce: "swiotlb_bounce"
        case .swiotlbFull: "swiotlb_full"
        case .virtioStatus: "virtio_status"
        case .virtioFeatures: "virtio_features"
        case .virtioProbe: "virtio_probe"
        case .guestFault: "guest_fault"
        case .dmaDebugWarning: "dma_debug_warning"
        case .guestLog: "guest_log"
        case .smmuContextFault: "smmu_context_fault"
        case .smmuv3Event: "smmuv3_event"
        case .intrRemapFault: "intr_remap_fault"
        case .hostTranslate: "host_translate"
        case .hostIotlbUpdate: "host_iotlb_update"
        case .hostIotlbHit: "host_iotlb_hit"
        case .hostAddressSpace: "host_address_space"
        case .hostFault: "host_fault"
        case .hostContext: "host_context"
        case .hostInvalidate: "host_invalidate"
        case .hostAccess: "host_access"
        case .virtqueuePop: "virtqueue_pop"
        case .virtqueueFill: "virtqueue_fill"
        case .virtqueueFlush: "virtqueue_flush"
        case .virtqueueNotify: "virtqueue_notify"
        case .virtioNotify: "virtio_notify"
        case .virtioSetStatus: "virtio_set_status"
        case .virtioMapFailure: "virtio_map_failure"
        case .lostEvents: "lost_events"
        case .droppedRecords: "dropped_records"
        case .truncatedList: "truncated_list"
        case .clockSync: "clock_sync"
        case .marker: "marker"
        }
    }

    public var description: String { name }

    /// Looks a kind up by its ``name``.
    public init?(name: String) {
        guard let k = EventKind.byName[name] else { return nil }
        self = k
    }

    private static let byName: [String: EventKind] = Dictionary(
        uniqueKeysWithValues: EventKind.allCases.map { ($0.name, $0) })

    /// True for the kinds written by the guest kernel (as opposed to the host or bookkeeping).
    public var isGuest: Bool { rawValue < 48 }
    /// True for the kinds written by the host (QEMU).
    public var isHost: Bool { rawValue >= 48 && rawValue < 96 }
}
