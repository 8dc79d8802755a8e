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
        // util-linux dmesg: `-x` puts `kern  :err   : ` first; `--time-format iso` an ISO time, `-T` a
        // `[Tue Dec  3 10:34:12 2024]` wall-clock stamp (kept as a record prefix; no boot-clock time).
        if let k = facilityLevel(v, j) { j = k; stamped = true }
        if let k = isoTime(v, j) { j = k; stamped = true }
        if let k = ctime(v, j) { j = k; stamped = true }
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

    /// `kern  :err   : ` (`dmesg -x`): a syslog facility and a level, each padded to 6 columns.
    private static func facilityLevel(_ v: LineView, _ j: Int) -> Int? {
        guard j + 15 <= v.count, v[j + 6] == 0x3A, v[j + 13] == 0x3A, v[j + 14] == 0x20 else { return nil }
        let facility = v.string(j, j + 6).trimmingSpaces
        let level = v.string(j + 7, j + 13).trimmingSpaces
        guard facilities.contains(facility), levels.contains(level) else { return nil }
        return v.skipSpaces(j + 15)
    }

    private static let facilities: Set<String> = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpr", "ftp",
        "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"
    ]
    private static let levels: Set<String> = ["emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"]

    /// `2024-12-03T10:34:12,123456+01:00 ` (`dmesg --time-format iso`, also journal `-o short-iso`).
    private static func isoTime(_ v: LineView, _ j: Int) -> Int? {
        guard j + 20 <= v.count, v[j + 4] == 0x2D, v[j + 7] == 0x2D, v[j + 10] == 0x54, v[j + 13] == 0x3A else {
            return nil
        }
        for k in [0, 1, 2, 3, 5, 6, 8, 9, 11, 12] where !(v[j + k] >= 0x30 && v[j + k] <= 0x39) { return nil }
        let e = v.tokenEnd(j)
        // Followed by the message, or by `host kernel:` (left to the `kernel:` rule).
        return e < v.count ? e : nil
    }

    /// `[Tue Dec  3 10:34:12 2024]` (`dmesg -T`).
    private static func ctime(_ v: LineView, _ j: Int) -> Int? {
        guard j + 26 <= v.count, v[j] == 0x5B, v[j + 4] == 0x20, v[j + 8] == 0x20 else { return nil }
        guard let close = v.search("]", from: j), close - j <= 26, close - j >= 24 else { return nil }
        var colons = 0
        for k in (j + 1)..<close where v[k] == 0x3A { colons += 1 }
        guard colons == 2 else { return nil }
        return v.skipSpaces(close + 1)
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

private extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        while s.first == " " { s = s.dropFirst() }
        return String(s)
    }
}
