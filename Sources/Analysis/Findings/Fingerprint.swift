import TraceFormat

/// Stable finding identities. FNV-1a 64 over the identifying fields joined by NUL: no timestamps, event
/// indices, counts or directories, so a finding keeps its fingerprint when the same capture is re-ingested,
/// moved, or replayed again.
public enum Fingerprint {
    /// The fingerprint of a finding's identifying fields: 16 lower-case hex digits.
    public static func of(trace: String, scenario: String, device: String, category: String, key: String, rule: String)
        -> String
    {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for (i, field) in [trace, scenario, device, category, key, rule].enumerated() {
            if i > 0 { h = (h ^ 0) &* 0x0000_0100_0000_01B3 }
            for byte in field.utf8 {
                h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            }
        }
        return hex16(h)
    }

    /// The trace name used in findings: the last path component without its extension(s) (`.dmat`,
    /// `.jsonl`, `.dmat.zst`), so `out/run1/virtio.dmat` and `virtio.jsonl` name the same capture. Only known
    /// extensions are removed, so a dot inside the name stays: `linux6.12-intel-strict.dmat` is
    /// `linux6.12-intel-strict`, not `linux6` (which every `linux6.12-*` capture would share).
    public static func traceName(_ path: String) -> String {
        var base = path.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? path
        for group in [compressionExtensions, traceExtensions] {
            for ext in group where base.count > ext.count + 1 && base.hasSuffix("." + ext) {
                base.removeLast(ext.count + 1)
                break
            }
        }
        return base
    }

    /// Compression suffixes `traceName` removes first (`x.dmat.zst`), then one trace extension.
    static let compressionExtensions = ["zst", "zstd", "gz", "xz"]
    static let traceExtensions = ["dmat", "jsonl", "json", "dat", "txt", "log"]

    /// `value` as exactly 16 lower-case hex digits.
    public static func hex16(_ value: UInt64) -> String {
        Hex.digits(value, width: 16)
    }
}
