/// A generic slot of the 56-byte record whose meaning depends on the kind.
public enum RecordSlot: String, Sendable, CaseIterable, Codable {
    case address, address2, size, aux, aux2, detail
}

/// How a named per-kind field is written in JSONL and text.
public enum FieldType: String, Sendable, Codable {
    /// Unsigned integer shown as a `0x…` hex string (addresses, masks, attrs).
    case hex
    /// Unsigned integer shown in decimal.
    case uint
    /// A 32-bit two's-complement value shown as a signed decimal (errno-style errors).
    case int32
    /// A string-table id shown as the string itself.
    case string
    /// The `detail` byte as ``MapAPI`` name.
    case mapAPI = "map_api"
    /// The `detail` byte as ``SyncTarget`` name.
    case syncTarget = "sync_target"
    /// The `detail` byte as ``SwiotlbMode`` name.
    case swiotlbMode = "swiotlb_mode"
    /// The `detail` byte as ``ProbeResult`` name.
    case probeResult = "probe_result"
    /// The `detail` byte as ``FaultSource`` name.
    case faultSource = "fault_source"
    /// The `detail` byte as ``Permissions`` (`r`, `w`, `rw`, `none`).
    case permissions
    /// GFP flags in the stable encoding of ``GFPNames``, shown as `GFP_KERNEL|__GFP_ZERO` (`none` for 0).
    case gfpFlags = "gfp_flags"
}

/// One named field of a kind: which slot holds it and how it is shown.
public struct KindField: Sendable, Codable, Equatable {
    /// The JSONL and text name (`dma_addr`).
    public var name: String
    /// The record slot holding the value.
    public var slot: RecordSlot
    /// How the value is shown.
    public var type: FieldType
}

/// The per-kind field names (the JSONL vocabulary and the header's schema section), derived from the
/// table on ``Event``. Slots not listed for a kind are zero in well-formed records.
public enum KindSchema {
    /// The fields of `kind`, in output order.
    /// ``fields(_:)`` of every kind, built once: the per-event text and JSONL writers read it for every event
    /// (building the array per event was a fifth of `dmatrace cat`'s time).
    private static let fieldTable: [[KindField]] = {
        var t = Array(repeating: [KindField](), count: 256)
        for k in EventKind.allCases { t[Int(k.rawValue)] = makeFields(k) }
        return t
    }()

    public static func fields(_ kind: EventKind) -> [KindField] { fieldTable[Int(kind.rawValue)] }

    private static func makeFields(_ kind: EventKind) -> [KindField] {
        func f(_ n: String, _ s: RecordSlot, _ t: FieldType) -> KindField { KindField(name: n, slot: s, type: t) }
        switch kind {
        case .dmaMap, .dmaUnmap:
            return [
                f("dma_addr", .address, .hex), f("phys_addr", .address2, .hex), f("size", .size, .uint),
                f("attrs", .aux, .hex), f("sg_index", .aux2, .uint), f("api", .detail, .mapAPI)
            ]
        case .dmaAlloc:
            return [
                f("dma_addr", .address, .hex), f("virt_addr", .address2, .hex), f("size", .size, .uint),
                f("gfp", .aux, .gfpFlags), f("attrs", .aux2, .hex), f("api", .detail, .mapAPI)
            ]
        case .dmaFree:
            return [
                f("dma_addr", .address, .hex), f("virt_addr", .address2, .hex), f("size", .size, .uint),
                f("attrs", .aux2, .hex), f("api", .detail, .mapAPI)
            ]
        case .dmaSync:
            return [
                f("dma_addr", .address, .hex), f("size", .size, .uint), f("sg_index", .aux2, .uint),
                f("target", .detail, .syncTarget)
            ]
        case .dmaMapError:
            return [
                f("addr", .address, .hex), f("size", .size, .uint), f("error", .aux, .int32),
                f("api", .detail, .mapAPI)
            ]
        case .dmaErrorCheck:
            return [f("dma_addr", .address, .hex)]
        case .iommuMap:
            return [
                f("iova", .address, .hex), f("paddr", .address2, .hex), f("size", .size, .uint),
                f("domain", .aux, .uint), f("cpu", .aux2, .uint)
            ]
        case .iommuUnmap:
            return [
                f("iova", .address, .hex), f("unmapped_size", .address2, .uint), f("size", .size, .uint),
                f("domain", .aux, .uint), f("cpu", .aux2, .uint)
            ]
        case .iommuGroupAdd, .iommuGroupRemove:
            return [f("group", .aux, .uint)]
        case .iommuAttach, .iommuDetach:
            return []
        case .iommuPageFault:
            return [f("iova", .address, .hex), f("fault_flags", .aux, .hex), f("driver", .aux2, .string)]
        case .swiotlbBounce:
            return [
                f("dev_addr", .address, .hex), f("dma_mask", .address2, .hex), f("size", .size, .uint),
                f("mode", .detail, .swiotlbMode)
            ]
        case .swiotlbFull:
            return [f("size", .size, .uint), f("total_slots", .aux, .uint), f("used_slots", .aux2, .uint)]
        case .virtioStatus:
            return [f("status", .address, .hex)]
        case .virtioFeatures:
            return [f("offered", .address, .hex), f("acked", .address2, .hex)]
        case .virtioProbe:
            return [f("message", .aux, .string), f("errno", .aux2, .uint), f("result", .detail, .probeResult)]
        case .guestFault:
            return [
                f("fault_addr", .address, .hex), f("reason", .aux, .uint), f("message", .aux2, .string),
                f("iommu", .detail, .faultSource)
            ]
        case .dmaDebugWarning:
            return [
                f("dma_addr", .address, .hex), f("size", .size, .uint), f("message", .aux, .string),
                f("rule", .aux2, .uint)
            ]
        case .smmuContextFault:
            return [
                f("iova", .address, .hex), f("fsynr", .address2, .hex), f("cbfrsynra", .size, .hex),
                f("fsr", .aux, .hex), f("sid", .aux2, .hex), f("cb", .detail, .uint)
            ]
        case .smmuv3Event:
            return [
                f("iova", .address, .hex), f("ipa", .address2, .hex), f("ssid", .size, .hex),
                f("sid", .aux, .hex), f("event_name", .aux2, .string), f("event", .detail, .hex)
            ]
        case .intrRemapFault:
            return [
                f("index", .address, .hex), f("reason", .aux, .uint), f("message", .aux2, .string),
                f("iommu", .detail, .faultSource)
            ]
        case .guestLog, .marker:
            return [f("message", .aux, .string)]
        case .hostTranslate:
            return [
                f("iova", .address, .hex), f("gpa", .address2, .hex), f("page_size", .size, .uint),
                f("domain", .aux, .uint), f("pasid", .aux2, .uint), f("perm", .detail, .permissions)
            ]
        case .hostIotlbUpdate, .hostIotlbHit:
            return [
                f("iova", .address, .hex), f("gpa", .address2, .hex), f("page_size", .size, .uint),
                f("domain", .aux, .uint), f("perm", .detail, .permissions)
            ]
        case .hostAddressSpace:
            return [f("translated", .aux, .uint)]
        case .hostFault:
            return [
                f("fault_addr", .address, .hex), f("reason", .aux, .uint), f("pasid", .aux2, .uint),
                f("iommu", .detail, .faultSource)
            ]
        case .hostContext:
            return [f("domain", .aux, .uint), f("context_flags", .aux2, .hex)]
        case .hostInvalidate:
            return [
                f("addr", .address, .hex), f("size", .size, .uint), f("domain", .aux, .uint),
                f("inv_type", .aux2, .uint)
            ]
        case .hostAccess:
            return [f("addr", .address, .hex), f("size", .size, .uint)]
        case .virtqueuePop, .virtqueueFill, .virtqueueFlush, .virtqueueNotify, .virtioNotify, .virtioSetStatus:
            return [
                f("vq", .address, .hex), f("value", .address2, .hex), f("len", .size, .uint),
                f("queue", .aux, .uint), f("count", .aux2, .uint)
            ]
        case .virtioMapFailure:
            return [f("addr", .address, .hex), f("size", .size, .uint), f("message", .aux, .string)]
        case .lostEvents:
            return [f("count", .aux, .uint), f("cpu", .aux2, .uint)]
        case .droppedRecords:
            return [f("count", .aux, .uint), f("reason", .aux2, .string)]
        case .truncatedList:
            return [f("kept", .aux, .uint), f("total", .aux2, .uint)]
        case .clockSync:
            return [f("other_ts", .address, .uint), f("other_clock", .aux, .uint)]
        }
    }

    /// True for kinds whose direction bits are always meaningful (the guest DMA API and swiotlb).
    public static func hasDirection(_ kind: EventKind) -> Bool {
        kind.rawValue <= 7 || kind == .swiotlbBounce
    }
}

/// The schema section of the header frame: the record's fields and the kinds the writer knew.
/// Readers use it to name kinds they do not know; the layout itself is fixed by the major version.
public struct TraceSchema: Codable, Sendable, Equatable {
    /// One fixed field of the record.
    public struct Field: Codable, Sendable, Equatable {
        public var name: String
        public var offset: Int
        /// `u8`, `u16`, `u32` or `u64`, little-endian.
        public var type: String
    }

    /// One record kind.
    public struct Kind: Codable, Sendable, Equatable {
        public var id: Int
        public var name: String
        public var fields: [KindField]
    }

    /// Bytes per record (56).
    public var recordSize: Int
    /// The fixed record fields, by offset.
    public var fields: [Field]
    /// The kinds the writer knew, with their named fields.
    public var kinds: [Kind]

    enum CodingKeys: String, CodingKey {
        case recordSize = "record_size", fields, kinds
    }

    /// The schema of this build of the format (3.0: bytes 48–53 the position, 54–55 the CPU plus one).
    public static let current = TraceSchema(
        recordSize: DMATFormat.recordSize,
        fields: commonFields + [
            Field(name: "position", offset: 48, type: "u48"), Field(name: "cpu", offset: 54, type: "u16")
        ],
        kinds: EventKind.allCases.map { Kind(id: Int($0.rawValue), name: $0.name, fields: KindSchema.fields($0)) })

    /// The schema a 1.x or 2.x file declares (bytes 48–55 the position): written when no event carries a CPU.
    public static let withoutCPU = TraceSchema(
        recordSize: DMATFormat.recordSize, fields: commonFields + [Field(name: "position", offset: 48, type: "u64")],
        kinds: current.kinds)

    private static let commonFields = [
        Field(name: "kind", offset: 0, type: "u8"), Field(name: "flags", offset: 1, type: "u8"),
        Field(name: "detail", offset: 2, type: "u8"), Field(name: "clock", offset: 3, type: "u8"),
        Field(name: "device", offset: 4, type: "u16"), Field(name: "source", offset: 6, type: "u16"),
        Field(name: "timestamp", offset: 8, type: "u64"), Field(name: "address", offset: 16, type: "u64"),
        Field(name: "address2", offset: 24, type: "u64"), Field(name: "size", offset: 32, type: "u64"),
        Field(name: "aux", offset: 40, type: "u32"), Field(name: "aux2", offset: 44, type: "u32")
    ]

    /// The name of kind `raw` according to this schema, if listed.
    public func kindName(_ raw: UInt8) -> String? {
        kinds.first { $0.id == Int(raw) }?.name
    }
}
