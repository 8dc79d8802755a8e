/// Where the kernel's message starts in one pasted log line, and its timestamp.
///
/// Lines reach dmatrace as users paste them: `[  12.345678] msg` from `dmesg`, `<3>[ 12.3] msg` from
/// `/dev/kmsg` or a console, `[ 12.3] [  T123] msg` with CONFIG_PRINTK_CALLER, indented by markdown (two or
/// four spaces) or quoted by mail (`> `), behind syslog (`Nov 25 10:00:00 host kernel: [ 12.3] msg`), journal
/// (`journalctl -k -o short-monotonic`: `[ 12.3] host kernel: msg`) or `kernel: ` prefixes, or with the
/// timestamp left empty (`[    ]`). The parser reads the prefix by its structure and keeps the
/// `[seconds]` timestamp wherever it stands.
struct DmesgPrefix {
    /// Index of the first byte of the kernel message.
    var message: Int
    /// `[seconds]` as nanoseconds, when the line has one.
    var timestamp: UInt64?
    /// True when the line carries a record prefix (timestamp, `<level>`, `kernel:`): the start of a printk
    /// record, never the wrapped tail of the previous one.
    var stamped: Bool
    /// True when the line began with white space before anything else (a markdown indent, or a wrapped
    /// or tab-indented continuation when nothing else follows).
    var indented: Bool

    static func parse(_ v: LineView) -> DmesgPrefix {
        var j = v.skipSpaces(0)
        let indented = j > 0
        // Mail quoting (`> `, `>> `) and markdown inline code (a leading backtick).
        while j < v.count && (v[j] == 0x3E || v[j] == 0x60) { j = v.skipSpaces(j + 1) }
        var stamped = false
        var ts: UInt64?
        stampAndLevel(v, &j, &ts, &stamped)
        // `kernel: ` right here (journal without host, syslog already cut) or after a syslog/journal
        // prefix (`Nov 25 10:00:00 host kernel: `, `2024-01-01T10:00:00+0000 host kernel: `,
        // `[ 12.3] host kernel: `): the prefix before it holds no `: ` (the message would).
        if v.hasPrefix("kernel: ", at: j) {
            j += 8
            stamped = true
        } else if let k = v.search(" kernel: ", from: j), k - j <= 64, v.search(": ", from: j).map({ $0 > k }) ?? true,
            !v.hasPrefix("DMAR", at: j)
        {
            j = k + 9
            stamped = true
        }
        if stamped {
            j = v.skipSpaces(j)
            if ts == nil { stampAndLevel(v, &j, &ts, &stamped) }
            // `kernel:     8.490167] msg`: the `[` lost in a paste; seconds and `]` still say what it was.
            if ts == nil, j < v.count, v[j] >= 0x30 && v[j] <= 0x39 {
                var k = j
                if let t = v.seconds(&k), k < v.count, v[k] == 0x5D, v.search(".", from: j).map({ $0 < k }) ?? false {
                    ts = t
                    j = v.skipSpaces(k + 1)
                }
            }
        }
        return DmesgPrefix(message: j, timestamp: ts, stamped: stamped, indented: indented && !stamped)
    }

    /// `<level>`, `[ seconds]` (or an empty `[  ]`), `[  T123]` / `[  C0]` at `j`, each optional.
    private static func stampAndLevel(_ v: LineView, _ j: inout Int, _ ts: inout UInt64?, _ stamped: inout Bool) {
        if j < v.count && v[j] == 0x3C {  // <level>
            var k = j + 1
            if v.dec(&k) != nil, k < v.count, v[k] == 0x3E {
                j = k + 1
                stamped = true
            }
        }
        if j < v.count && v[j] == 0x5B {
            var k = v.skipSpaces(j + 1)
            if let t = v.seconds(&k) {
                k = v.skipSpaces(k)
                guard k < v.count, v[k] == 0x5D else { return }
                ts = t
            } else if !(k < v.count && v[k] == 0x5D && k > j + 1) {
                return  // `[` of something else (`[DMA Read]`, `[    T1]` alone is not a stamp)
            }
            j = k + 1
            stamped = true
            // CONFIG_PRINTK_CALLER: `[    T1]` / `[    C0]`.
            if j < v.count && v[j] == 0x5B {
                var c = v.skipSpaces(j + 1)
                if c < v.count && (v[c] == 0x54 || v[c] == 0x43) {
                    c += 1
                    if v.dec(&c) != nil, c < v.count, v[c] == 0x5D { j = c + 1 }
                }
            }
            j = v.skipSpaces(j)
        }
    }
}
