/// One recorded event: a fixed-size value that maps 1:1 onto the 56-byte on-disk record
/// (`schemas/dmat-format.md` §Records). Every kind uses the same generic slots; what each slot means
/// depends on ``kind`` and is listed in the table below and in the spec.
///
/// | kind | address | address2 | size | aux | aux2 | detail |
/// |---|---|---|---|---|---|---|
/// | dmaMap | dma addr | cpu phys | size | attrs | sg index (0 for single) | ``MapAPI`` |
/// | dmaUnmap | dma addr | cpu phys (sg) or 0 | size | attrs | sg index | ``MapAPI`` |
/// | dmaAlloc | dma addr | cpu virt addr | size | gfp flags | attrs | ``MapAPI`` |
/// | dmaFree | dma addr | cpu virt addr | size | 0 | attrs | ``MapAPI`` |
/// | dmaSync | dma addr | 0 | size | 0 | sg index | ``SyncTarget`` |
/// | dmaMapError | phys or dma addr | 0 (dma mask of a dmesg `overflow` line) | size | error (two's complement) | 0 | ``MapAPI`` |
/// | dmaErrorCheck | dma addr | 0 | 0 | 0 | 0 | 0 |
/// | iommuMap | iova | paddr | size | domain (0 unknown) | 0 | 0 |
/// | iommuUnmap | iova | unmapped size | size | domain | 0 | 0 |
/// | iommuGroupAdd/Remove | 0 | 0 | 0 | group id | 0 | 0 |
/// | iommuAttach/Detach | 0 | 0 | 0 | 0 | 0 | 0 |
/// | iommuPageFault | iova | 0 | 0 | flags | driver string | 0 |
/// | swiotlbBounce | original dev addr | dma mask | size | 0 | 0 | ``SwiotlbMode`` |
/// | swiotlbFull | 0 | 0 | size asked for | total slots (0 unknown) | used slots (0 unknown) | 0 |
/// | virtioStatus | status | 0 | 0 | 0 | 0 | 0 |
/// | virtioFeatures | offered | acked | 0 | 0 | 0 | 0 |
/// | virtioProbe | 0 | 0 | 0 | message string | errno (positive) | ``ProbeResult`` |
/// | guestFault | fault addr | 0 | 0 | reason | message string | ``FaultSource`` |
/// | dmaDebugWarning | dma addr | 0 | size | message string | rule id | 0 |
/// | guestLog | 0 | 0 | 0 | message string | 0 | 0 |
/// | smmuContextFault | iova | fsynr0 | cbfrsynra | fsr | stream id (``Event/noString`` unknown) | context bank (255 unknown) |
/// | smmuv3Event | iova (input address) | ipa (fetch address) | substream id | stream id | event name string | event id |
/// | intrRemapFault | interrupt index | 0 | 0 | reason | message string | ``FaultSource`` |
/// | hostTranslate | iova | gpa (translated) | page mask + 1 | domain | pasid | ``Permissions`` |
/// | hostIotlbUpdate | iova | gpa | page size | domain | 0 | ``Permissions`` |
/// | hostIotlbHit | iova | gpa | page size | domain | 0 | ``Permissions`` |
/// | hostAddressSpace | 0 | 0 | 0 | 1 translated / 0 bypass | 0 | 0 |
/// | hostFault | fault addr | 0 | 0 | reason | pasid | ``FaultSource`` |
/// | hostContext | 0 | 0 | 0 | domain | context-entry flags | 0 |
/// | hostInvalidate | address | 0 | size | domain (sid: context-device) | invalidation type | 0 |
/// | hostAccess | address | 0 | size | 0 | 0 | 0 |
/// | virtqueue* / virtio* | vq / vdev pointer | value | len | queue index | count | 0 |
/// | virtioMapFailure | address | 0 | size | message string | 0 | 0 |
/// | lostEvents / droppedRecords | 0 | 0 | 0 | count | cpu / reason string | 0 |
/// | truncatedList | 0 | 0 | 0 | entries kept | entries in full | 0 |
/// | clockSync | time in the other domain (ns) | 0 | 0 | other clock id | 0 | 0 |
/// | marker | 0 | 0 | 0 | message string | 0 | 0 |
///
/// ``flags`` bits 0–1 carry the DMA direction (``DMADirection``); the other bits are ``EventFlags``.
/// Strings (messages, driver names) are ids into the trace's string table; ``Event/noString`` means none.
public struct Event: Sendable, Hashable {
    /// What happened.
    public var kind: EventKind
    /// Direction (bits 0–1) and ``EventFlags`` (bits 2–7).
    public var flags: UInt8
    /// Kind-specific small enum (see the table on ``Event``).
    public var detail: UInt8
    /// Clock domain id of ``timestamp`` (index into ``TraceMetadata/clocks``).
    public var clock: UInt8
    /// Device index into ``TraceMetadata/devices``, or ``Event/noDevice``.
    public var device: UInt16
    /// Input file index into ``TraceMetadata/inputs`` (provenance), or ``Event/noSource``.
    public var source: UInt16
    /// Nanoseconds in clock domain ``clock``.
    public var timestamp: UInt64
    /// Primary address (DMA address, IOVA, fault address).
    public var address: UInt64
    /// Secondary address (CPU physical, GPA, ...).
    public var address2: UInt64
    /// Size in bytes.
    public var size: UInt64
    /// Kind-specific 32-bit value (attrs, reason, domain, group, string id, count).
    public var aux: UInt32
    /// Second kind-specific 32-bit value.
    public var aux2: UInt32
    /// Record bytes 48–55 as one word: ``position`` in bits 0–47, ``cpu`` + 1 in bits 48–63 (format 3.0;
    /// in 1.x and 2.x files these bits are the top of the position, which writers leave 0).
    public var provenance: UInt64

    /// Provenance within the input: 1-based line number for text inputs, byte offset for binary ones; kept to
    /// 48 bits (256 TiB), a larger value is cut to its low 48 bits.
    @inlinable public var position: UInt64 {
        get { provenance & Event.positionMask }
        set { provenance = (provenance & ~Event.positionMask) | (newValue & Event.positionMask) }
    }

    /// The CPU that produced the event (ftrace's `[cpu]` column, the ring buffer of a trace.dat record), nil
    /// when the input does not say. 0…65534.
    @inlinable public var cpu: UInt16? {
        get {
            let v = UInt16(truncatingIfNeeded: provenance >> 48)
            return v == 0 ? nil : v &- 1
        }
        set { provenance = (provenance & Event.positionMask) | Event.cpuBits(newValue) }
    }

    /// `cpu` as ``provenance`` holds it: CPU + 1 in bits 48–63 (65534 at most), 0 for nil. Importers that stamp
    /// one CPU on many events make it once and OR it in (an optional passed per event cost ftrace parsing 20 %).
    @inlinable public static func cpuBits(_ cpu: UInt16?) -> UInt64 {
        (cpu.map { UInt64(min($0, 0xFFFE)) &+ 1 } ?? 0) << 48
    }

    /// The bits of ``provenance`` that hold ``position``.
    public static let positionMask: UInt64 = (1 << 48) - 1

    /// ``device`` value meaning "no device known".
    public static let noDevice: UInt16 = 0xFFFF
    /// ``source`` value meaning "no input file" (synthesised events).
    public static let noSource: UInt16 = 0xFFFF
    /// String id meaning "no string".
    public static let noString: UInt32 = 0xFFFF_FFFF

    /// Creates an event; unspecified slots are zero, device and source "none". Inlinable: importers make one per
    /// parsed line.
    @inlinable public init(
        kind: EventKind, timestamp: UInt64 = 0, device: UInt16 = Event.noDevice,
        direction: DMADirection = .bidirectional, flags: EventFlags = [], detail: UInt8 = 0,
        address: UInt64 = 0, address2: UInt64 = 0, size: UInt64 = 0, aux: UInt32 = 0, aux2: UInt32 = 0,
        clock: UInt8 = 0, source: UInt16 = Event.noSource, position: UInt64 = 0, cpu: UInt16? = nil
    ) {
        self.kind = kind
        self.flags = (direction.rawValue & 0x3) | (flags.rawValue & ~0x3)
        self.detail = detail
        self.clock = clock
        self.device = device
        self.source = source
        self.timestamp = timestamp
        self.address = address
        self.address2 = address2
        self.size = size
        self.aux = aux
        self.aux2 = aux2
        self.provenance = (position & Event.positionMask) | Event.cpuBits(cpu)
    }

    /// DMA direction, bits 0–1 of ``flags``.
    @inlinable public var direction: DMADirection {
        get { DMADirection(rawValue: flags & 0x3)! }
        set { flags = (flags & ~0x3) | newValue.rawValue }
    }

    /// The flag bits 2–7 of ``flags``.
    @inlinable public var eventFlags: EventFlags {
        get { EventFlags(rawValue: flags & ~0x3) }
        set { flags = (flags & 0x3) | (newValue.rawValue & ~0x3) }
    }

    /// True when a device is attached.
    @inlinable public var hasDevice: Bool { device != Event.noDevice }
}

/// DMA direction as the kernel's `enum dma_data_direction` numbers it.
public enum DMADirection: UInt8, Sendable, CaseIterable, Codable {
    case bidirectional = 0
    case toDevice = 1
    case fromDevice = 2
    case none = 3

    /// The kernel's symbolic name, as printed by `dma:*` tracepoints (`TO_DEVICE`).
    public var kernelName: String {
        switch self {
        case .bidirectional: "BIDIRECTIONAL"
        case .toDevice: "TO_DEVICE"
        case .fromDevice: "FROM_DEVICE"
        case .none: "NONE"
        }
    }

    /// Parses the kernel's symbolic name (also accepts `DMA_` prefixed forms).
    public init?(kernelName: some StringProtocol) {
        var s = Substring(kernelName)
        if s.hasPrefix("DMA_") { s = s.dropFirst(4) }
        switch s {
        case "BIDIRECTIONAL": self = .bidirectional
        case "TO_DEVICE": self = .toDevice
        case "FROM_DEVICE": self = .fromDevice
        case "NONE": self = .none
        default: return nil
        }
    }

    /// True when the device may read the buffer.
    public var deviceReads: Bool { self == .toDevice || self == .bidirectional }
    /// True when the device may write the buffer.
    public var deviceWrites: Bool { self == .fromDevice || self == .bidirectional }
}

/// Flag bits 2–7 of ``Event/flags``.
public struct EventFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The access or fault was a write by the device (faults, host accesses, translations).
    public static let write = EventFlags(rawValue: 1 << 2)
    /// The event was implied by replay or ingest rather than recorded.
    public static let implied = EventFlags(rawValue: 1 << 3)
    /// A list behind the event was truncated by the tracer.
    public static let truncated = EventFlags(rawValue: 1 << 4)
    /// The device was attributed by inference (IOMMU group, host sid/domain) rather than named by the input.
    public static let attributed = EventFlags(rawValue: 1 << 5)
    /// The event reports an error (mapping failure, probe failure, translation failure).
    public static let error = EventFlags(rawValue: 1 << 6)
    /// The timestamp was shifted into the reference clock by alignment.
    public static let aligned = EventFlags(rawValue: 1 << 7)
}

/// Which DMA-API entry point produced a map/unmap/alloc (``Event/detail``).
public enum MapAPI: UInt8, Sendable, CaseIterable, Codable {
    case page = 0, single = 1, phys = 2, resource = 3, sg = 4, coherent = 5, pages = 6, sgt = 7
    /// `intel_iommu:map_single`/`unmap_single` (5.3–5.10).
    case intelSingle = 8
    /// `intel_iommu:map_sg`/`unmap_sg`.
    case intelSG = 9
    /// `intel_iommu:bounce_map_single` and friends.
    case intelBounce = 10

    /// The IOMMU driver's own map tracepoints (Linux 5.3–5.10 intel-iommu, which maps DMA-API buffers in its
    /// own dma_ops without `iommu:map`): the event is the IOMMU mapping itself, not only a DMA-API call.
    public var isIOMMUDriverMap: Bool { self == .intelSingle || self == .intelSG || self == .intelBounce }
}

/// `dma_sync_*` target (``Event/detail``).
public enum SyncTarget: UInt8, Sendable, CaseIterable, Codable {
    case forCPU = 0, forDevice = 1
}

/// `swiotlb_bounced` force mode across eras (``Event/detail``).
public enum SwiotlbMode: UInt8, Sendable, CaseIterable, Codable {
    case normal = 0, force = 1, noForce = 2
}

/// Probe outcome (``Event/detail`` of ``EventKind/virtioProbe``).
public enum ProbeResult: UInt8, Sendable, CaseIterable, Codable {
    case probed = 0, failed = 1, refusedFeatures = 2, invisible = 3
}

/// Which IOMMU architecture printed or recorded a fault (``Event/detail``).
public enum FaultSource: UInt8, Sendable, CaseIterable, Codable {
    case unknown = 0, vtd = 1, amdvi = 2, smmuv3 = 3, virtioIOMMU = 4, iommuCore = 5
}

/// Translation permissions (``Event/detail`` of host translations): bit 0 read, bit 1 write.
public struct Permissions: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let read = Permissions(rawValue: 1)
    public static let write = Permissions(rawValue: 2)
}
