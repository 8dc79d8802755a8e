import TraceFormat

/// `DMA_ATTR_*` bits as the kernel numbers them (include/linux/dma-mapping.h), stored in the attrs slot
/// (``TraceFormat/Event/aux`` of maps, ``TraceFormat/Event/aux2`` of allocs). Names the kernel added after
/// 6.18 whose bit numbers we have not verified are folded into ``other``.
public struct DMAAttributes: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let weakOrdering = DMAAttributes(rawValue: 1 << 1)
    public static let writeCombine = DMAAttributes(rawValue: 1 << 2)
    public static let noKernelMapping = DMAAttributes(rawValue: 1 << 4)
    public static let skipCPUSync = DMAAttributes(rawValue: 1 << 5)
    public static let forceContiguous = DMAAttributes(rawValue: 1 << 6)
    public static let allocSinglePages = DMAAttributes(rawValue: 1 << 7)
    public static let noWarn = DMAAttributes(rawValue: 1 << 8)
    public static let privileged = DMAAttributes(rawValue: 1 << 9)
    /// `DMA_ATTR_MMIO` (6.18).
    public static let mmio = DMAAttributes(rawValue: 1 << 10)
    /// An attribute name this importer does not know (newer kernels).
    public static let other = DMAAttributes(rawValue: 1 << 31)

    static func bit(named v: LineView, _ a: Int, _ b: Int) -> DMAAttributes {
        if v.equals(a, b, "SKIP_CPU_SYNC") { return .skipCPUSync }
        if v.equals(a, b, "WEAK_ORDERING") { return .weakOrdering }
        if v.equals(a, b, "WRITE_COMBINE") { return .writeCombine }
        if v.equals(a, b, "NO_KERNEL_MAPPING") { return .noKernelMapping }
        if v.equals(a, b, "FORCE_CONTIGUOUS") { return .forceContiguous }
        if v.equals(a, b, "ALLOC_SINGLE_PAGES") { return .allocSinglePages }
        if v.equals(a, b, "NO_WARN") { return .noWarn }
        if v.equals(a, b, "PRIVILEGED") { return .privileged }
        if v.equals(a, b, "MMIO") { return .mmio }
        return .other
    }

    /// Parses `A|B|C` (empty = none) in `a..<b`; a hex number (unknown symbolic value) is taken as bits.
    static func parse(_ v: LineView, _ a: Int, _ b: Int) -> DMAAttributes {
        var r: DMAAttributes = []
        if a < b && v.hasPrefix("0x", at: a) {
            var i = a
            return DMAAttributes(rawValue: UInt32(truncatingIfNeeded: v.hex(&i) ?? 0))
        }
        var s = a
        var i = a
        while i <= b {
            if i == b || v[i] == 0x7C {
                if i > s { r.insert(bit(named: v, s, i)) }
                s = i + 1
            }
            i += 1
        }
        return r
    }
}

/// GFP flags of a coherent allocation in our own stable encoding (the kernel's `__GFP_*` bit numbers
/// changed between releases, the printed names did not). Stored in ``TraceFormat/Event/aux`` of `dmaAlloc`.
public struct GFPFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The names in bit order (bit 0 = `GFP_KERNEL`): ``TraceFormat/GFPNames/names``.
    public static let names: [String] = GFPNames.names
    public static let kernel = GFPFlags(rawValue: 1 << 0)
    public static let atomic = GFPFlags(rawValue: 1 << 1)
    public static let zero = GFPFlags(rawValue: 1 << 12)
    public static let noWarn = GFPFlags(rawValue: 1 << 13)
    /// A name not in ``names`` (or a raw hex value).
    public static let other = GFPFlags(rawValue: 1 << 31)

    private static let table: [[UInt8]] = names.map { Array($0.utf8) }

    /// Parses `GFP_KERNEL|__GFP_ZERO` (`none` = 0) in `a..<b`.
    static func parse(_ v: LineView, _ a: Int, _ b: Int) -> GFPFlags {
        if v.equals(a, b, "none") || a >= b { return [] }
        var r: GFPFlags = []
        var s = a
        var i = a
        while i <= b {
            if i == b || v[i] == 0x7C {
                if i > s {
                    var bit: GFPFlags = .other
                    for (k, name) in table.enumerated() where name.count == i - s {
                        if name.withUnsafeBytes({ Platform.bytesEqual($0.baseAddress!, v.base + s, count: i - s) }) {
                            bit = GFPFlags(rawValue: 1 << UInt32(k))
                            break
                        }
                    }
                    r.insert(bit)
                }
                s = i + 1
            }
            i += 1
        }
        return r
    }
}
