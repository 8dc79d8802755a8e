/// The stable GFP-flag encoding of ``EventKind/dmaAlloc``'s `gfp` field (``Event/aux``): one bit per name
/// the kernel prints (`GFP_KERNEL|__GFP_ZERO`), because the kernel's own `__GFP_*` bit numbers changed
/// between releases while the printed names did not. Bit 31 stands for a name not in the list. Text and
/// JSONL show the names (`GFP_KERNEL`, `none` for 0), never the encoding, so `gfp=0x1` can not be read as
/// the kernel's `__GFP_DMA`.
public enum GFPNames {
    /// The names in bit order (bit 0 = `GFP_KERNEL`).
    public static let names: [String] = [
        "GFP_KERNEL", "GFP_ATOMIC", "GFP_NOWAIT", "GFP_NOIO", "GFP_NOFS", "GFP_USER", "GFP_DMA", "GFP_DMA32",
        "GFP_HIGHUSER", "GFP_HIGHUSER_MOVABLE", "GFP_TRANSHUGE", "GFP_TRANSHUGE_LIGHT", "__GFP_ZERO",
        "__GFP_NOWARN", "__GFP_NORETRY", "__GFP_RETRY_MAYFAIL", "__GFP_NOFAIL", "__GFP_COMP", "__GFP_HIGHMEM",
        "__GFP_DMA", "__GFP_DMA32", "__GFP_MOVABLE", "__GFP_ACCOUNT", "__GFP_NOMEMALLOC"
    ]
    /// The name of bit 31.
    public static let other = "other"

    /// `GFP_KERNEL|__GFP_ZERO`, `none` for 0; bits without a name as a trailing `0x…`.
    public static func render(_ value: UInt64) -> String {
        if value == 0 { return "none" }
        var parts: [String] = []
        var rest = value
        for (i, n) in names.enumerated() where value & (1 << UInt64(i)) != 0 {
            parts.append(n)
            rest &= ~(1 << UInt64(i))
        }
        if rest & (1 << 31) != 0 {
            parts.append(other)
            rest &= ~(1 << 31)
        }
        if rest != 0 { parts.append(Hex.prefixed(rest)) }
        return parts.joined(separator: "|")
    }

    /// The inverse of ``render(_:)``; also reads a bare `0x…` (JSONL written before names were shown).
    /// Nil for a name it does not know.
    public static func parse(_ text: String) -> UInt64? {
        if text == "none" { return 0 }
        var v: UInt64 = 0
        for part in text.split(separator: "|", omittingEmptySubsequences: false) {
            if let i = names.firstIndex(where: { $0 == part }) {
                v |= 1 << UInt64(i)
            } else if part == other {
                v |= 1 << 31
            } else if part.hasPrefix("0x") || part.hasPrefix("0X"), let x = UInt64(part.dropFirst(2), radix: 16),
                x <= UInt32.max
            {
                v |= x
            } else {
                return nil
            }
        }
        return v
    }
}
