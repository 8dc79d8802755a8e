import TraceFormat

/// Turns binary kernel records (decoded through their format files) into ``Event``s, following the slot table
/// on ``Event``: `iommu:*`, `swiotlb:swiotlb_bounced`, `dma:*` (6.12+, every variant by field name) and the
/// `intel_iommu:*` per-mapping events of 5.3–5.10.
///
/// Field names, not positions, select the values, so the pre-/post-5.17 `iommu` forms and the `dma` variants
/// (optional `dir`, `dma_map_phys`, the capped `dma_map_sg`) all decode through one path. The names are looked
/// up once per format (``resolve(_:longSize:)``): what to do with its records and where each field the mapper
/// reads lies, so mapping a record is offset reads, with no string hashing or comparison and no reference
/// counting (`perf`: name lookups were about a third of `ingest` of a trace.dat).
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

    /// Per resolved format (the handle ``resolve(_:longSize:)`` returned): its route and its name.
    private var routes: [KernelRoute] = []
    private var names: [String] = []
    /// ``FieldKey/count`` entries per resolved format, indexed by handle × count + key.
    private var fields: [ResolvedField] = []

    /// Resolves `format` once: returns the handle to map its records with.
    mutating func resolve(_ format: TraceEventFormat, longSize: Int) -> Int {
        routes.append(KernelRoute(system: format.system, name: format.name))
        names.append(format.name)
        for key in FieldKey.allCases {
            fields.append(format.field(key.name).map { ResolvedField($0, longSize: longSize) } ?? ResolvedField())
        }
        return routes.count - 1
    }

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

    // Field reads of a record of the format `h` resolved to.
    @inline(__always) private func field(_ h: Int, _ k: FieldKey) -> ResolvedField {
        fields[h &* FieldKey.count &+ k.rawValue]
    }
    private func int(_ r: KernelRecord, _ h: Int, _ k: FieldKey) -> UInt64? { r.int(field(h, k)) }
    /// The first of alternative field names that reads.
    private func int(_ r: KernelRecord, _ h: Int, _ a: FieldKey, _ b: FieldKey) -> UInt64? {
        r.int(field(h, a)) ?? r.int(field(h, b))
    }
    private func int(_ r: KernelRecord, _ h: Int, _ a: FieldKey, _ b: FieldKey, _ c: FieldKey) -> UInt64? {
        r.int(field(h, a)) ?? r.int(field(h, b)) ?? r.int(field(h, c))
    }
    private func string(_ r: KernelRecord, _ h: Int, _ k: FieldKey) -> String? { r.string(field(h, k)) }
    private func array(_ r: KernelRecord, _ h: Int, _ k: FieldKey) -> [UInt64]? { r.array(field(h, k)) }

    /// Maps `record`, of the format resolved to `format`; `template` carries timestamp, clock, source and
    /// position.
    mutating func map(_ record: KernelRecord, format h: Int, template: Event, sink: inout some EventSink) throws
        -> Outcome
    {
        var e = template
        let r = record
        switch routes[h] {
        case .iommuMap:
            guard let iova = int(r, h, .iova), let size = int(r, h, .size) else {
                return .malformed("map without iova/size")
            }
            e.kind = .iommuMap
            e.address = iova
            e.address2 = int(r, h, .paddr) ?? 0
            e.size = size
            e.aux2 = cpu.map { $0 &+ 1 } ?? 0
            try sink.append(e)
        case .iommuUnmap:
            guard let iova = int(r, h, .iova), let size = int(r, h, .size) else {
                return .malformed("unmap without iova/size")
            }
            e.kind = .iommuUnmap
            e.address = iova
            e.address2 = int(r, h, .unmappedSize) ?? 0
            e.size = size
            e.aux2 = cpu.map { $0 &+ 1 } ?? 0
            try sink.append(e)
        case .iommuPageFault:
            guard let iova = int(r, h, .iova) else { return .malformed("io_page_fault without iova") }
            let flags = int(r, h, .flags) ?? 0
            e.kind = .iommuPageFault
            e.device = device(string(r, h, .device), sink: &sink)
            e.address = iova
            e.aux = UInt32(truncatingIfNeeded: flags)
            e.aux2 = string(r, h, .driver).map { sink.intern($0) } ?? Event.noString
            if flags & 1 != 0 { e.eventFlags.insert(.write) }
            try sink.append(e)
        case .iommuGroupAdd, .iommuGroupRemove:
            let isAdd = routes[h] == .iommuGroupAdd
            guard let name = string(r, h, .device), let gid = int(r, h, .gid, .groupID, .groupIDUnderscored) else {
                return .malformed("\(names[h]) without device/gid")
            }
            let group = Int(Int32(truncatingIfNeeded: gid))
            e.kind = isAdd ? .iommuGroupAdd : .iommuGroupRemove
            if isAdd && !name.isEmpty {
                e.device = sink.device(DeviceInfo(name: name, iommuGroup: group))
                deviceIDs[name] = e.device
            } else {
                e.device = device(name, sink: &sink)
            }
            e.aux = UInt32(truncatingIfNeeded: gid)
            try sink.append(e)
        case .iommuAttach, .iommuDetach:
            guard let name = string(r, h, .device) else { return .malformed("\(names[h]) without device") }
            e.kind = routes[h] == .iommuAttach ? .iommuAttach : .iommuDetach
            e.device = device(name, sink: &sink)
            try sink.append(e)
        case .swiotlbBounced:
            guard let addr = int(r, h, .devAddr), let size = int(r, h, .size) else {
                return .malformed("swiotlb_bounced without dev_addr/size")
            }
            e.kind = .swiotlbBounce
            e.device = device(string(r, h, .devName), sink: &sink)
            e.address = addr
            e.address2 = int(r, h, .dmaMask) ?? 0
            e.size = size
            // `bool force` (5.18+: FORCE/NORMAL) or `enum swiotlb_force` (NORMAL 0, FORCE 1, NO_FORCE 2).
            let mode = int(r, h, .force, .swiotlbForce) ?? 0
            e.detail = (mode <= 2 ? SwiotlbMode(rawValue: UInt8(mode)) : nil)?.rawValue ?? 0
            try sink.append(e)
        case .dma(let route):
            return try mapDMA(r, h, route, e, sink: &sink)
        case .intel(let isMap, let api):
            guard let addr = int(r, h, .devAddr), let size = int(r, h, .size) else {
                return .malformed("\(names[h]) without dev_addr/size")
            }
            e.kind = isMap ? .dmaMap : .dmaUnmap
            e.device = device(string(r, h, .devName), sink: &sink)
            e.address = addr
            e.address2 = int(r, h, .physAddr) ?? 0
            e.size = size
            e.detail = api.rawValue
            if let index = int(r, h, .index) { e.aux2 = UInt32(truncatingIfNeeded: index) }
            try sink.append(e)
        case .unknown:
            return .unknown
        }
        return .mapped
    }

    private mutating func mapDMA(
        _ r: KernelRecord, _ h: Int, _ route: KernelRoute.DMARoute?, _ template: Event, sink: inout some EventSink
    ) throws -> Outcome {
        var e = template
        e.device = device(string(r, h, .device), sink: &sink)
        e.direction = Self.direction(int(r, h, .dir))
        let attrs = UInt32(truncatingIfNeeded: int(r, h, .attrs) ?? 0)
        guard let route else { return .unknown }
        switch route {
        case .map(let api):
            guard let dma = int(r, h, .dmaAddr), let size = int(r, h, .size) else {
                return .malformed("\(names[h]) without dma_addr/size")
            }
            e.kind = .dmaMap
            e.address = dma
            e.address2 = int(r, h, .physAddr) ?? 0
            e.size = size
            e.aux = attrs
            e.detail = api.rawValue
            try sink.append(e)
        case .unmap(let api):
            guard let dma = int(r, h, .addr, .dmaAddr), let size = int(r, h, .size) else {
                return .malformed("\(names[h]) without addr/size")
            }
            e.kind = .dmaUnmap
            e.address = dma
            e.size = size
            e.aux = attrs
            e.detail = api.rawValue
            try sink.append(e)
        case .allocFree(let isAlloc, let api):
            guard let size = int(r, h, .size) else { return .malformed("\(names[h]) without size") }
            e.kind = isAlloc ? .dmaAlloc : .dmaFree
            e.address = int(r, h, .dmaAddr) ?? 0
            e.address2 = int(r, h, .virtAddr, .physAddr) ?? array(r, h, .physAddrs)?.first ?? 0
            e.size = size
            if isAlloc {
                e.aux = UInt32(truncatingIfNeeded: int(r, h, .flags) ?? 0)
            }
            e.aux2 = attrs
            e.detail = api.rawValue
            try sink.append(e)
        case .mapError(let api):
            e.kind = .dmaMapError
            e.address = array(r, h, .physAddrs)?.first ?? int(r, h, .dmaAddr) ?? 0
            e.size = int(r, h, .size) ?? 0
            e.aux = UInt32(truncatingIfNeeded: int(r, h, .err) ?? 0)
            e.detail = api.rawValue
            e.eventFlags.insert(.error)
            try sink.append(e)
        case .mapSG:
            guard let dmas = array(r, h, .dmaAddrs), let lengths = array(r, h, .lengths) ?? array(r, h, .sizes)
            else {
                return .malformed("dma_map_sg without dma_addrs/lengths")
            }
            let phys = array(r, h, .physAddrs) ?? []
            let truncated = (int(r, h, .truncated) ?? 0) != 0
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
                t.aux2 = UInt32(truncatingIfNeeded: int(r, h, .fullEnts) ?? 0)
                try sink.append(t)
            }
        case .unmapSG:
            guard let phys = array(r, h, .physAddrs) ?? array(r, h, .addrs) else {
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
        case .syncSingle(let target):
            guard let dma = int(r, h, .dmaAddr), let size = int(r, h, .size) else {
                return .malformed("\(names[h]) without dma_addr/size")
            }
            e.kind = .dmaSync
            e.address = dma
            e.size = size
            e.detail = target.rawValue
            try sink.append(e)
        case .syncSG(let target):
            guard let dmas = array(r, h, .dmaAddrs), let lengths = array(r, h, .lengths) ?? array(r, h, .sizes)
            else {
                return .malformed("\(names[h]) without dma_addrs/lengths")
            }
            e.kind = .dmaSync
            e.detail = target.rawValue
            for i in 0..<min(dmas.count, lengths.count) {
                e.address = dmas[i]
                e.size = lengths[i]
                e.aux2 = UInt32(i)
                try sink.append(e)
            }
        }
        return .mapped
    }
}
