import TraceFormat

/// The field names ``KernelEventMapper`` reads, as a closed set: each format's fields are resolved against
/// these names once (``KernelEventMapper/resolve(_:longSize:)``), so a record's reads are offset loads, with no name hashing.
enum FieldKey: Int, CaseIterable {
    case iova, size, paddr, unmappedSize, flags, device, driver, gid, groupID, groupIDUnderscored
    case devAddr, devName, dmaMask, force, swiotlbForce, dir, attrs, dmaAddr, physAddr, addr, virtAddr
    case physAddrs, err, dmaAddrs, lengths, sizes, truncated, fullEnts, addrs, index

    /// The name in the kernel's format file.
    var name: String {
        switch self {
        case .iova: "iova"
        case .size: "size"
        case .paddr: "paddr"
        case .unmappedSize: "unmapped_size"
        case .flags: "flags"
        case .device: "device"
        case .driver: "driver"
        case .gid: "gid"
        case .groupID: "groupID"
        case .groupIDUnderscored: "group_id"
        case .devAddr: "dev_addr"
        case .devName: "dev_name"
        case .dmaMask: "dma_mask"
        case .force: "force"
        case .swiotlbForce: "swiotlb_force"
        case .dir: "dir"
        case .attrs: "attrs"
        case .dmaAddr: "dma_addr"
        case .physAddr: "phys_addr"
        case .addr: "addr"
        case .virtAddr: "virt_addr"
        case .physAddrs: "phys_addrs"
        case .err: "err"
        case .dmaAddrs: "dma_addrs"
        case .lengths: "lengths"
        case .sizes: "sizes"
        case .truncated: "truncated"
        case .fullEnts: "full_ents"
        case .addrs: "addrs"
        case .index: "index"
        }
    }

    static let count = allCases.count
}

/// Where and how one field of one format is read: a plain value (no name, no reference), resolved once from
/// the format's `field:` line.
struct ResolvedField {
    /// False when the format has no field of that name.
    var present = false
    var offset = 0
    var size = 0
    var signed = false
    var storage = TraceEventFormat.Field.Storage.scalar
    /// Element width of an array field (``TraceEventFormat/Field/elementSize(longSize:)``).
    var elementSize = 0

    init() {}

    init(_ f: TraceEventFormat.Field, longSize: Int) {
        present = true
        offset = f.offset
        size = f.size
        signed = f.signed
        storage = f.storage
        // Only arrays use it; working it out parses the C type, so it is done here, once per format.
        elementSize = f.storage == .scalar ? 0 : f.elementSize(longSize: longSize)
    }
}

/// What ``KernelEventMapper`` does with one event format, decided once from its system and name.
enum KernelRoute: Equatable {
    case unknown
    case iommuMap, iommuUnmap, iommuPageFault, iommuGroupAdd, iommuGroupRemove, iommuAttach, iommuDetach
    case swiotlbBounced
    /// A `dma:*` event; `nil` for one the mapper does not import (its device is still registered).
    case dma(DMARoute?)
    case intel(isMap: Bool, api: MapAPI)

    enum DMARoute: Equatable {
        case map(MapAPI), unmap(MapAPI)
        /// `dma_alloc*`/`dma_free*`: whether it allocates, and the API (`coherent`, `pages`, `sgt`).
        case allocFree(isAlloc: Bool, api: MapAPI)
        case mapError(MapAPI)
        case mapSG, unmapSG
        case syncSingle(SyncTarget), syncSG(SyncTarget)
    }

    init(system: String, name: String) {
        switch (system, name) {
        case ("iommu", "map"): self = .iommuMap
        case ("iommu", "unmap"): self = .iommuUnmap
        case ("iommu", "io_page_fault"): self = .iommuPageFault
        case ("iommu", "add_device_to_group"): self = .iommuGroupAdd
        case ("iommu", "remove_device_from_group"): self = .iommuGroupRemove
        case ("iommu", "attach_device_to_domain"): self = .iommuAttach
        case ("iommu", "detach_device_from_domain"): self = .iommuDetach
        case ("swiotlb", "swiotlb_bounced"): self = .swiotlbBounced
        case ("dma", _): self = .dma(Self.dma(name))
        case ("intel_iommu", _):
            switch name {
            case "map_single": self = .intel(isMap: true, api: .intelSingle)
            case "map_sg": self = .intel(isMap: true, api: .intelSG)
            case "bounce_map_single", "bounce_map_sg": self = .intel(isMap: true, api: .intelBounce)
            case "unmap_single": self = .intel(isMap: false, api: .intelSingle)
            case "unmap_sg": self = .intel(isMap: false, api: .intelSG)
            case "bounce_unmap_single": self = .intel(isMap: false, api: .intelBounce)
            default: self = .unknown
            }
        default: self = .unknown
        }
    }

    private static func dma(_ name: String) -> DMARoute? {
        switch name {
        case "dma_map_page": .map(.page)
        case "dma_map_phys": .map(.phys)
        case "dma_map_resource": .map(.resource)
        case "dma_unmap_page": .unmap(.page)
        case "dma_unmap_phys": .unmap(.phys)
        case "dma_unmap_resource": .unmap(.resource)
        case "dma_alloc", "dma_alloc_pages", "dma_free", "dma_free_pages", "dma_alloc_sgt", "dma_free_sgt":
            .allocFree(
                isAlloc: name.hasPrefix("dma_alloc"),
                api: name.hasSuffix("_sgt") ? .sgt : name.hasSuffix("_pages") ? .pages : .coherent)
        case "dma_alloc_sgt_err": .mapError(.sgt)
        case "dma_map_sg_err": .mapError(.sg)
        case "dma_map_sg": .mapSG
        case "dma_unmap_sg": .unmapSG
        case "dma_sync_single_for_cpu": .syncSingle(.forCPU)
        case "dma_sync_single_for_device": .syncSingle(.forDevice)
        case "dma_sync_sg_for_cpu": .syncSG(.forCPU)
        case "dma_sync_sg_for_device": .syncSG(.forDevice)
        default: nil
        }
    }
}

/// The bytes of one binary kernel trace record, read through the fields its format resolved to: every read is
/// bounds-checked against the record and a missing or damaged field reads as nil. A plain value (a view of
/// bytes the caller keeps alive for the call), so reading a record retains nothing.
struct KernelRecord {
    /// The record, common fields included.
    let bytes: UnsafeRawBufferPointer
    let bigEndian: Bool

    /// Maximum elements read from one dynamic array (the kernel caps dma_map_sg at 128; be generous).
    static let maxArrayElements = 4096

    @inline(__always) private func has(_ offset: Int, _ n: Int) -> Bool {
        offset >= 0 && n >= 0 && offset <= bytes.count && n <= bytes.count - offset
    }

    /// An unsigned integer of `size` bytes (1, 2, 4 or 8) at `offset`, sign-extended when `signed`; nil when
    /// it does not fit in the record or has another size.
    func integer(_ offset: Int, size: Int, signed: Bool) -> UInt64? {
        guard has(offset, size) else { return nil }
        switch size {
        case 1:
            let v = bytes.load(fromByteOffset: offset, as: UInt8.self)
            return signed ? UInt64(bitPattern: Int64(Int8(bitPattern: v))) : UInt64(v)
        case 2:
            let raw = bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
            let v = bigEndian ? UInt16(bigEndian: raw) : UInt16(littleEndian: raw)
            return signed ? UInt64(bitPattern: Int64(Int16(bitPattern: v))) : UInt64(v)
        case 4:
            let raw = bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
            let v = bigEndian ? UInt32(bigEndian: raw) : UInt32(littleEndian: raw)
            return signed ? UInt64(bitPattern: Int64(Int32(bitPattern: v))) : UInt64(v)
        case 8:
            let raw = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            return bigEndian ? UInt64(bigEndian: raw) : UInt64(littleEndian: raw)
        default:
            return nil
        }
    }

    /// A scalar field as a 64-bit pattern (signed fields sign-extended).
    func int(_ f: ResolvedField) -> UInt64? {
        guard f.present, f.storage == .scalar else { return nil }
        return integer(f.offset, size: f.size, signed: f.signed)
    }

    /// Bytes of a dynamic (`__data_loc`/`__rel_loc`) or fixed array field.
    func payload(_ f: ResolvedField) -> UnsafeRawBufferPointer? {
        guard f.present else { return nil }
        switch f.storage {
        case .scalar:
            return nil
        case .fixedArray:
            return has(f.offset, f.size) ? UnsafeRawBufferPointer(rebasing: bytes[f.offset..<(f.offset + f.size)]) : nil
        case .dataLoc, .relLoc:
            guard let loc = integer(f.offset, size: 4, signed: false) else { return nil }
            var start = Int(loc & 0xFFFF)
            if f.storage == .relLoc { start += f.offset + f.size }
            let n = Int(loc >> 16)
            return has(start, n) ? UnsafeRawBufferPointer(rebasing: bytes[start..<(start + n)]) : nil
        }
    }

    /// A string field (`__data_loc char[]` or `char[N]`), without its trailing NULs.
    func string(_ f: ResolvedField) -> String? {
        payload(f).map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// An integer array field (`__data_loc u64[]`, `__data_loc unsigned int[]`).
    func array(_ f: ResolvedField) -> [UInt64]? {
        guard let p = payload(f) else { return nil }
        let width = f.elementSize
        guard width == 1 || width == 2 || width == 4 || width == 8 else { return nil }
        let n = min(p.count / width, Self.maxArrayElements)
        let r = KernelRecord(bytes: p, bigEndian: bigEndian)
        var out: [UInt64] = []
        out.reserveCapacity(n)
        for i in 0..<n {
            guard let v = r.integer(i * width, size: width, signed: false) else { break }
            out.append(v)
        }
        return out
    }
}
