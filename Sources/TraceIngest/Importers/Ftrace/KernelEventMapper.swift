import TraceFormat

/// Turns binary kernel records (decoded through their format files) into ``Event``s, following the slot table
/// on ``Event``: `iommu:*`, `swiotlb:swiotlb_bounced`, `dma:*` (6.12+, every variant by field name) and the
/// `intel_iommu:*` per-mapping events of 5.3–5.10.
///
/// Field names, not positions, select the values, so the pre-/post-5.17 `iommu` forms and the `dma` variants
/// (optional `dir`, `dma_map_phys`, the capped `dma_map_sg`) all decode through one path.
struct KernelEventMapper {
    /// What became of one record.
    enum Outcome {
        /// Events were appended.
        case mapped
        /// The event is not one we import.
        case unknown
        /// A field the mapping needs is missing or damaged.
        case malformed(String)
    }

    private var deviceIDs: [String: UInt16] = [:]
    /// The CPU of the record being mapped (its per-CPU ring buffer), when known: stored with iommu map/unmap.
    var cpu: UInt32?

    /// Registers (once) and returns the device named `name`; an empty name means no device.
    private mutating func device(_ name: String?, sink: inout some EventSink) -> UInt16 {
        guard let name, !name.isEmpty else { return Event.noDevice }
        if let id = deviceIDs[name] { return id }
        let id = sink.device(DeviceInfo(name: name))
        deviceIDs[name] = id
        return id
    }

    private static func direction(_ raw: UInt64?) -> DMADirection {
        guard let raw, raw <= 3 else { return .bidirectional }
        return DMADirection(rawValue: UInt8(raw)) ?? .bidirectional
    }

    /// Maps `record`; `template` carries timestamp, clock, source and position.
    mutating func map(_ record: KernelRecord, template: Event, sink: inout some EventSink) throws -> Outcome {
        var e = template
        let f = record.format
        switch (f.system, f.name) {
        case ("iommu", "map"):
            guard let iova = record.int("iova"), let size = record.int("size") else {
                return .malformed("map without iova/size")
            }
            e.kind = .iommuMap
            e.address = iova
            e.address2 = record.int("paddr") ?? 0
            e.size = size
            e.aux2 = cpu.map { $0 &+ 1 } ?? 0
            try sink.append(e)
        case ("iommu", "unmap"):
            guard let iova = record.int("iova"), let size = record.int("size") else {
                return .malformed("unmap without iova/size")
            }
            e.kind = .iommuUnmap
            e.address = iova
            e.address2 = record.int("unmapped_size") ?? 0
            e.size = size
            e.aux2 = cpu.map { $0 &+ 1 } ?? 0
            try sink.append(e)
        case ("iommu", "io_page_fault"):
            guard let iova = record.int("iova") else { return .malformed("io_page_fault without iova") }
            let flags = record.int("flags") ?? 0
            e.kind = .iommuPageFault
            e.device = device(record.string("device"), sink: &sink)
            e.address = iova
            e.aux = UInt32(truncatingIfNeeded: flags)
            e.aux2 = record.string("driver").map { sink.intern($0) } ?? Event.noString
            if flags & 1 != 0 { e.eventFlags.insert(.write) }
            try sink.append(e)
        case ("iommu", "add_device_to_group"), ("iommu", "remove_device_from_group"):
            guard let name = record.string("device"), let gid = record.int("gid", "groupID", "group_id") else {
                return .malformed("\(f.name) without device/gid")
            }
            let group = Int(Int32(truncatingIfNeeded: gid))
            e.kind = f.name == "add_device_to_group" ? .iommuGroupAdd : .iommuGroupRemove
            if f.name == "add_device_to_group" && !name.isEmpty {
                e.device = sink.device(DeviceInfo(name: name, iommuGroup: group))
                deviceIDs[name] = e.device
            } else {
                e.device = device(name, sink: &sink)
            }
            e.aux = UInt32(truncatingIfNeeded: gid)
            try sink.append(e)
        case ("iommu", "attach_device_to_domain"), ("iommu", "detach_device_from_domain"):
            guard let name = record.string("device") else { return .malformed("\(f.name) without device") }
            e.kind = f.name == "attach_device_to_domain" ? .iommuAttach : .iommuDetach
            e.device = device(name, sink: &sink)
            try sink.append(e)
        case ("swiotlb", "swiotlb_bounced"):
            guard let addr = record.int("dev_addr"), let size = record.int("size") else {
                return .malformed("swiotlb_bounced without dev_addr/size")
            }
            e.kind = .swiotlbBounce
            e.device = device(record.string("dev_name"), sink: &sink)
            e.address = addr
            e.address2 = record.int("dma_mask") ?? 0
            e.size = size
            // `bool force` (5.18+: FORCE/NORMAL) or `enum swiotlb_force` (NORMAL 0, FORCE 1, NO_FORCE 2).
            let mode = record.int("force", "swiotlb_force") ?? 0
            e.detail = (mode <= 2 ? SwiotlbMode(rawValue: UInt8(mode)) : nil)?.rawValue ?? 0
            try sink.append(e)
        case ("dma", _):
            return try mapDMA(record, e, sink: &sink)
        case ("intel_iommu", _):
            return try mapIntel(record, e, sink: &sink)
        default:
            return .unknown
        }
        return .mapped
    }

    private mutating func mapDMA(_ record: KernelRecord, _ template: Event, sink: inout some EventSink) throws
        -> Outcome
    {
        var e = template
        let name = record.format.name
        e.device = device(record.string("device"), sink: &sink)
        e.direction = Self.direction(record.int("dir"))
        let attrs = UInt32(truncatingIfNeeded: record.int("attrs") ?? 0)
        switch name {
        case "dma_map_page", "dma_map_phys", "dma_map_resource":
            guard let dma = record.int("dma_addr"), let size = record.int("size") else {
                return .malformed("\(name) without dma_addr/size")
            }
            e.kind = .dmaMap
            e.address = dma
            e.address2 = record.int("phys_addr") ?? 0
            e.size = size
            e.aux = attrs
            e.detail = (name == "dma_map_page" ? MapAPI.page : name == "dma_map_phys" ? .phys : .resource).rawValue
            try sink.append(e)
        case "dma_unmap_page", "dma_unmap_phys", "dma_unmap_resource":
            guard let dma = record.int("addr", "dma_addr"), let size = record.int("size") else {
                return .malformed("\(name) without addr/size")
            }
            e.kind = .dmaUnmap
            e.address = dma
            e.size = size
            e.aux = attrs
            e.detail = (name == "dma_unmap_page" ? MapAPI.page : name == "dma_unmap_phys" ? .phys : .resource).rawValue
            try sink.append(e)
        case "dma_alloc", "dma_alloc_pages", "dma_free", "dma_free_pages", "dma_alloc_sgt", "dma_free_sgt":
            guard let size = record.int("size") else { return .malformed("\(name) without size") }
            let isAlloc = name.hasPrefix("dma_alloc")
            e.kind = isAlloc ? .dmaAlloc : .dmaFree
            e.address = record.int("dma_addr") ?? 0
            e.address2 = record.int("virt_addr", "phys_addr") ?? record.array("phys_addrs")?.first ?? 0
            e.size = size
            if isAlloc {
                e.aux = UInt32(truncatingIfNeeded: record.int("flags") ?? 0)
            }
            e.aux2 = attrs
            e.detail = (name.hasSuffix("_sgt") ? MapAPI.sgt : name.hasSuffix("_pages") ? .pages : .coherent).rawValue
            try sink.append(e)
        case "dma_alloc_sgt_err", "dma_map_sg_err":
            e.kind = .dmaMapError
            e.address = record.array("phys_addrs")?.first ?? record.int("dma_addr") ?? 0
            e.size = record.int("size") ?? 0
            e.aux = UInt32(truncatingIfNeeded: record.int("err") ?? 0)
            e.detail = (name == "dma_map_sg_err" ? MapAPI.sg : .sgt).rawValue
            e.eventFlags.insert(.error)
            try sink.append(e)
        case "dma_map_sg":
            guard let dmas = record.array("dma_addrs"), let lengths = record.array("lengths") ?? record.array("sizes")
            else {
                return .malformed("dma_map_sg without dma_addrs/lengths")
            }
            let phys = record.array("phys_addrs") ?? []
            let truncated = (record.int("truncated") ?? 0) != 0
            e.kind = .dmaMap
            e.aux = attrs
            e.detail = MapAPI.sg.rawValue
            if truncated { e.eventFlags.insert(.truncated) }
            for i in 0..<min(dmas.count, lengths.count) {
                e.address = dmas[i]
                e.address2 = i < phys.count ? phys[i] : 0
                e.size = lengths[i]
                e.aux2 = UInt32(i)
                try sink.append(e)
            }
            if truncated {
                var t = template
                t.kind = .truncatedList
                t.device = e.device
                t.aux = UInt32(min(dmas.count, lengths.count))
                t.aux2 = UInt32(truncatingIfNeeded: record.int("full_ents") ?? 0)
                try sink.append(t)
            }
        case "dma_unmap_sg":
            guard let phys = record.array("phys_addrs") ?? record.array("addrs") else {
                return .malformed("dma_unmap_sg without phys_addrs")
            }
            e.kind = .dmaUnmap
            e.aux = attrs
            e.detail = MapAPI.sg.rawValue
            for (i, p) in phys.enumerated() {
                e.address2 = p
                e.aux2 = UInt32(i)
                try sink.append(e)
            }
        case "dma_sync_single_for_cpu", "dma_sync_single_for_device":
            guard let dma = record.int("dma_addr"), let size = record.int("size") else {
                return .malformed("\(name) without dma_addr/size")
            }
            e.kind = .dmaSync
            e.address = dma
            e.size = size
            e.detail = (name.hasSuffix("_cpu") ? SyncTarget.forCPU : .forDevice).rawValue
            try sink.append(e)
        case "dma_sync_sg_for_cpu", "dma_sync_sg_for_device":
            guard let dmas = record.array("dma_addrs"), let lengths = record.array("lengths") ?? record.array("sizes")
            else {
                return .malformed("\(name) without dma_addrs/lengths")
            }
            e.kind = .dmaSync
            e.detail = (name.hasSuffix("_cpu") ? SyncTarget.forCPU : .forDevice).rawValue
            for i in 0..<min(dmas.count, lengths.count) {
                e.address = dmas[i]
                e.size = lengths[i]
                e.aux2 = UInt32(i)
                try sink.append(e)
            }
        default:
            return .unknown
        }
        return .mapped
    }

    private mutating func mapIntel(_ record: KernelRecord, _ template: Event, sink: inout some EventSink) throws
        -> Outcome
    {
        var e = template
        let name = record.format.name
        let isMap: Bool
        let api: MapAPI
        switch name {
        case "map_single": (isMap, api) = (true, .intelSingle)
        case "map_sg": (isMap, api) = (true, .intelSG)
        case "bounce_map_single", "bounce_map_sg": (isMap, api) = (true, .intelBounce)
        case "unmap_single": (isMap, api) = (false, .intelSingle)
        case "unmap_sg": (isMap, api) = (false, .intelSG)
        case "bounce_unmap_single": (isMap, api) = (false, .intelBounce)
        default: return .unknown
        }
        guard let addr = record.int("dev_addr"), let size = record.int("size") else {
            return .malformed("\(name) without dev_addr/size")
        }
        e.kind = isMap ? .dmaMap : .dmaUnmap
        e.device = device(record.string("dev_name"), sink: &sink)
        e.address = addr
        e.address2 = record.int("phys_addr") ?? 0
        e.size = size
        e.detail = api.rawValue
        if let index = record.int("index") { e.aux2 = UInt32(truncatingIfNeeded: index) }
        try sink.append(e)
        return .mapped
    }
}
