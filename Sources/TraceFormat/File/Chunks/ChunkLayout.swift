/// How a chunk's zstd frame encodes its records: CHNK flags bits 0–7 (`schemas/dmat-format.md` §8, §9a).
///
/// `rows` keeps the property (schemas/dmat-format.md) that `zstd -d FILE` prints the 56-byte records; `compact` stores the same
/// records as per-kind, per-field byte-plane columns with predictions (deltas, references to live mappings),
/// about 2.5× smaller on DMA traces, and `zstd -d` then prints that encoding instead.
public enum ChunkLayout: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Concatenated 56-byte records (format 1.0; every 1.x reader reads it).
    case rows = 0
    /// The compact column encoding (format 2.0).
    case compact = 1

    /// The name used on the command line and in `dmatrace info`.
    public var description: String {
        switch self {
        case .rows: "rows"
        case .compact: "compact"
        }
    }

    /// Parses a command-line name (`rows`, `compact`).
    public init?(name: String) {
        guard let l = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = l
    }

    /// The layout `TraceWriter` and the commands use unless told otherwise. `rows`: against `zstd -d` on the
    /// same file, compact chunks decode at ~0.33× its CPU speed (`zstd -d` itself gets ~4× faster on the smaller
    /// file while dmatrace's own decode speed stays the same), which misses issue 7's "decode ≥ 0.9× zstd -d on
    /// the same file"; see tools/bench/README.md. Switching the default is this one line.
    public static let writerDefault = ChunkLayout.rows

    /// The format major version a file must declare when its writer uses this layout: 1 for rows (old readers
    /// read it), 2 for compact (old readers refuse it instead of reporting every chunk as damaged).
    public var majorVersion: UInt16 {
        switch self {
        case .rows: 1
        case .compact: 2
        }
    }
}

/// Constants of the compact chunk layout (`schemas/dmat-format.md` §9a), shared by encoder and decoder.
enum CompactLayout {
    /// Payload header: u32 event count, u16 stream count, u16 reserved (0).
    static let headerSize = 8
    /// One stream directory entry: u8 kind, u8 field, u8 mode, u8 width, u32 count.
    static let entrySize = 8
    /// Field ids (the directory's `field` byte), in the order a record's fields are decoded.
    enum Field {
        static let flags = 0, detail = 1, clock = 2, device = 3, source = 4, timestamp = 5, address = 6
        static let address2 = 7, size = 8, aux = 9, aux2 = 10, position = 11, ref = 12, reuse = 13
        /// Format 3.0: record bytes 54–55 (``Event/cpu`` plus one); read by the records of a kind only when
        /// the chunk has a stream for it, otherwise 0. `position` is then bytes 48–53.
        static let cpu = 14
        static let count = 15
        /// ref and reuse: mapping-table values, always mode 0.
        @inline(__always) static func isTableValue(_ f: Int) -> Bool { f == ref || f == reuse }
    }
    /// Residual modes (the directory's `mode` byte).
    enum Mode {
        /// value = residual.
        static let raw: UInt8 = 0
        /// value = prediction + unzigzag(residual); the prediction is the same field of the previous record of
        /// the same kind (timestamp, position, cpu: of the previous record of any kind).
        static let delta: UInt8 = 1
        /// value = this record's size + unzigzag(residual) (address2, aux, aux2 only).
        static let fromSize: UInt8 = 2
        /// value = this record's address + unzigzag(residual) (address2, aux, aux2 only).
        static let fromAddress: UInt8 = 3
        /// Every value is the same: the stream's data is that one value (W bytes), whatever its count.
        static let constant: UInt8 = 4
    }
    /// Entries in a family's table of live mappings; the oldest is dropped when it is full.
    static let liveCapacity = 4096
    /// Entries in a family's list of recently released mappings.
    static let releasedCapacity = 64

    /// What a kind does to its family's tables.
    enum Role { case none, open, close, peek }

    /// The family (0…2) and role of a kind byte: family 0 dma_map/dma_unmap/dma_sync, 1 dma_alloc/dma_free,
    /// 2 iommu_map/iommu_unmap. Every other kind byte (also unknown ones) has no family.
    @inline(__always)
    static func role(_ kind: UInt8) -> (family: Int, role: Role) {
        switch kind {
        case EventKind.dmaMap.rawValue: (0, .open)
        case EventKind.dmaUnmap.rawValue: (0, .close)
        case EventKind.dmaSync.rawValue: (0, .peek)
        case EventKind.dmaAlloc.rawValue: (1, .open)
        case EventKind.dmaFree.rawValue: (1, .close)
        case EventKind.iommuMap.rawValue: (2, .open)
        case EventKind.iommuUnmap.rawValue: (2, .close)
        default: (0, .none)
        }
    }

    /// Largest value a field may decode to (its width in the 56-byte record).
    static func maxValue(_ field: Int) -> UInt64 {
        switch field {
        case Field.flags, Field.detail, Field.clock: 0xFF
        case Field.device, Field.source: 0xFFFF
        case Field.aux, Field.aux2: 0xFFFF_FFFF
        case Field.position: Event.positionMask
        case Field.cpu: 0xFFFF
        case Field.ref: UInt64(liveCapacity)
        case Field.reuse: UInt64(releasedCapacity)
        default: .max
        }
    }

    @inline(__always) static func zigzag(_ d: UInt64) -> UInt64 {
        (d << 1) ^ (0 &- (d >> 63))
    }

    @inline(__always) static func unzigzag(_ z: UInt64) -> UInt64 {
        (z >> 1) ^ (0 &- (z & 1))
    }
}

/// A mapping as the compact layout's tables hold it.
struct CompactMapping: Equatable {
    var device: UInt16
    var address: UInt64
    var size: UInt64
}

/// How the encoder finds a live mapping; every choice writes the same bytes except ``none``.
enum CompactLiveSearch {
    /// The format's search (`schemas/dmat-format.md` §9a) over ``CompactTables``: up to 4,096 comparisons for a
    /// release, and up to 2,048 moves to remove what it found. The reference the tests compare against.
    case scan
    /// ``CompactLiveIndex``: the same index without scanning the list (the encoder's default).
    case indexed
    /// No search: every release is coded explicitly. Only the tests use it, as the twin that shows a search
    /// that misses changes the bytes.
    case none
}

/// The per-family tables of the compact layout: live mappings (oldest first, a ring) and recently released
/// ones (newest last). Encoder and decoder run the same operations in the same order, so both see the same
/// tables. Storage is allocated once and reused for every chunk.
struct CompactTables {
    private let live: UnsafeMutablePointer<CompactMapping>
    private let released: UnsafeMutablePointer<CompactMapping>
    private var liveHead = (0, 0, 0)
    private var liveCount = (0, 0, 0)
    private var releasedCount = (0, 0, 0)
    /// The encoder's filter (nil in the decoder): per family, ``filterBuckets`` counts of the released mappings
    /// whose hash is that index. A zero count proves a mapping is not in the list, so an open that reuses no
    /// released mapping (most of them) skips ``releasedRank(_:_:)``'s scan of up to 64 entries, which was 11 %
    /// of `ingest --layout compact`'s cycles (`perf record`, 200 MB of `gen_ftrace.py` text).
    private let releasedFilter: UnsafeMutablePointer<UInt8>?

    static let families = 3
    /// Buckets per family of the released filter: 64 per entry, so a miss scans about 1.5 % of the time.
    static let filterBuckets = 64 * CompactLayout.releasedCapacity

    /// - Parameter filterReleased: keep the filter that speeds up ``releasedRank(_:_:)`` (the encoder).
    init(filterReleased: Bool = false) {
        let z = CompactMapping(device: 0, address: 0, size: 0)
        live = .allocate(capacity: Self.families * CompactLayout.liveCapacity)
        live.initialize(repeating: z, count: Self.families * CompactLayout.liveCapacity)
        released = .allocate(capacity: Self.families * CompactLayout.releasedCapacity)
        released.initialize(repeating: z, count: Self.families * CompactLayout.releasedCapacity)
        if filterReleased {
            releasedFilter = .allocate(capacity: Self.families * Self.filterBuckets)
            releasedFilter?.initialize(repeating: 0, count: Self.families * Self.filterBuckets)
        } else {
            releasedFilter = nil
        }
    }

    func deallocate() {
        live.deallocate()
        released.deallocate()
        releasedFilter?.deallocate()
    }

    mutating func reset() {
        liveHead = (0, 0, 0)
        liveCount = (0, 0, 0)
        releasedCount = (0, 0, 0)
        releasedFilter?.update(repeating: 0, count: Self.families * Self.filterBuckets)
    }

    /// The filter count of `m` in family `f`, nil without a filter.
    @inline(__always) private func filterSlot(_ f: Int, _ m: CompactMapping) -> UnsafeMutablePointer<UInt8>? {
        guard let releasedFilter else { return nil }
        var h = m.address &* 0x9E37_79B9_7F4A_7C15
        h ^= (m.size ^ UInt64(m.device) << 48) &* 0xC2B2_AE3D_27D4_EB4F
        h ^= h >> 29
        return releasedFilter + (f &* Self.filterBuckets &+ Int(truncatingIfNeeded: h) & (Self.filterBuckets - 1))
    }

    @inline(__always) private func get(_ t: (Int, Int, Int), _ f: Int) -> Int {
        f == 0 ? t.0 : f == 1 ? t.1 : t.2
    }

    @inline(__always) private static func set(_ t: inout (Int, Int, Int), _ f: Int, _ v: Int) {
        switch f {
        case 0: t.0 = v
        case 1: t.1 = v
        default: t.2 = v
        }
    }

    /// Live mappings of family `f`.
    @inline(__always) func liveCount(_ f: Int) -> Int { get(liveCount, f) }

    @inline(__always) private func liveSlot(_ f: Int, _ j: Int) -> UnsafeMutablePointer<CompactMapping> {
        let mask: Int = CompactLayout.liveCapacity - 1
        let slot: Int = (get(liveHead, f) &+ j) & mask
        let base: Int = f &* CompactLayout.liveCapacity
        return live + (base &+ slot)
    }

    /// Live mapping `j` (0 = oldest) of family `f`; the caller checked `j < liveCount(f)`.
    @inline(__always) func live(_ f: Int, _ j: Int) -> CompactMapping { liveSlot(f, j).pointee }

    /// Appends a live mapping, dropping the oldest when the table is full.
    @inline(__always) mutating func open(_ f: Int, _ m: CompactMapping) {
        var n = get(liveCount, f)
        if n == CompactLayout.liveCapacity {
            Self.set(&liveHead, f, (get(liveHead, f) &+ 1) & (CompactLayout.liveCapacity - 1))
            n -= 1
        }
        liveSlot(f, n).pointee = m
        Self.set(&liveCount, f, n + 1)
    }

    /// Removes live mapping `j` (0 = oldest): the newer ones' indexes drop by one. Whichever side of `j` is
    /// shorter moves in the ring (the older ones up with the head, or the newer ones down); the indexes are the
    /// same either way. Moving only the older side cost up to 4,095 moves per release where stale mappings fill
    /// the front of the table.
    @inline(__always) mutating func removeLive(_ f: Int, _ j: Int) {
        let n = get(liveCount, f)
        if j < n - 1 - j {
            var i = j
            while i > 0 {
                liveSlot(f, i).pointee = liveSlot(f, i - 1).pointee
                i -= 1
            }
            Self.set(&liveHead, f, (get(liveHead, f) &+ 1) & (CompactLayout.liveCapacity - 1))
        } else {
            var i = j
            while i < n - 1 {
                liveSlot(f, i).pointee = liveSlot(f, i + 1).pointee
                i += 1
            }
        }
        Self.set(&liveCount, f, n - 1)
    }

    /// Index (0 = oldest) of the first live mapping equal to `m`, looking at the 64 oldest first and then
    /// from the newest back (the format's search; any match decodes the same). ``CompactLiveIndex`` returns the
    /// same index faster.
    func findLive(_ f: Int, _ m: CompactMapping) -> Int? {
        let n = get(liveCount, f)
        let front = min(n, 64)
        for j in 0..<front where liveSlot(f, j).pointee == m { return j }
        var j = n - 1
        while j >= front {
            if liveSlot(f, j).pointee == m { return j }
            j -= 1
        }
        return nil
    }

    /// Records a released mapping (newest last), dropping the oldest when the list is full.
    @inline(__always) mutating func release(_ f: Int, _ m: CompactMapping) {
        let base = released + f &* CompactLayout.releasedCapacity
        var n = get(releasedCount, f)
        if n == CompactLayout.releasedCapacity {
            if let c = filterSlot(f, base[0]) { c.pointee &-= 1 }
            (base).update(from: base + 1, count: n - 1)
            n -= 1
        }
        base[n] = m
        if let c = filterSlot(f, m) { c.pointee &+= 1 }
        Self.set(&releasedCount, f, n + 1)
    }

    /// The `c`-th (1-based) most recently released mapping of family `f` with this device and size, removed
    /// from the list; nil when there are fewer than `c`.
    @inline(__always) mutating func takeReleased(_ f: Int, device: UInt16, size: UInt64, _ c: Int) -> UInt64? {
        let base = released + f &* CompactLayout.releasedCapacity
        let n = get(releasedCount, f)
        var seen = 0
        var i = n - 1
        while i >= 0 {
            if base[i].device == device && base[i].size == size {
                seen += 1
                if seen == c {
                    let a = base[i].address
                    if let c = filterSlot(f, base[i]) { c.pointee &-= 1 }
                    (base + i).update(from: base + i + 1, count: n - 1 - i)
                    Self.set(&releasedCount, f, n - 1)
                    return a
                }
            }
            i -= 1
        }
        return nil
    }

    /// The 1-based rank that ``takeReleased(_:device:size:_:)`` needs to return `address`, or nil.
    func releasedRank(_ f: Int, _ m: CompactMapping) -> Int? {
        if let c = filterSlot(f, m), c.pointee == 0 { return nil }
        let base = released + f &* CompactLayout.releasedCapacity
        var seen = 0
        var i = get(releasedCount, f) - 1
        while i >= 0 {
            if base[i].device == m.device && base[i].size == m.size {
                seen += 1
                if base[i].address == m.address { return seen }
            }
            i -= 1
        }
        return nil
    }
}
