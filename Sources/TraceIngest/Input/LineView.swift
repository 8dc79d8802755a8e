/// A read-only view of one text line for the hot parsing paths: indices are byte offsets, every access is
/// bounds-checked against `count` by the callers' loop conditions, nothing allocates.
struct LineView {
    let base: UnsafePointer<UInt8>
    let count: Int

    init(_ raw: UnsafeRawBufferPointer) {
        // An empty line may come with a nil base address; point at a static byte instead.
        base = raw.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) } ?? LineView.emptyByte
        count = raw.count
    }

    init(base: UnsafePointer<UInt8>, count: Int) {
        self.base = base
        self.count = count
    }

    private nonisolated(unsafe) static let emptyByte: UnsafePointer<UInt8> = {
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        p.initialize(to: 0)
        return UnsafePointer(p)
    }()

    @inline(__always) subscript(i: Int) -> UInt8 { base[i] }

    /// The eight bytes at `i` as one word (``ByteWords``); `i + 8` must not pass `count`.
    @inline(__always) func word(_ i: Int) -> UInt64 {
        assert(i >= 0 && i + 8 <= count, "a word read outside the line")
        return ByteWords.load(base + i)
    }

    /// First index ≥ i holding neither a space nor a tab (or `count`).
    @inline(__always) func skipSpaces(_ i: Int) -> Int {
        // Most runs are empty or one byte long (between fields); longer ones (column padding) go a word at a time.
        if i >= count || (base[i] != 0x20 && base[i] != 0x09) { return i }
        if i + 1 >= count || (base[i + 1] != 0x20 && base[i + 1] != 0x09) { return i + 1 }
        return skipSpaceRun(i + 2)
    }

    /// ``skipSpaces(_:)`` past its first two blanks.
    func skipSpaceRun(_ i: Int) -> Int {
        var i = i
        while i + 8 <= count {
            let other = ~ByteWords.blank(word(i)) & ByteWords.high
            if other != 0 { return i + ByteWords.first(other) }
            i += 8
        }
        while i < count && (base[i] == 0x20 || base[i] == 0x09) { i += 1 }
        return i
    }

    /// First index ≥ i holding a space or tab (or `count`).
    @inline(__always) func tokenEnd(_ i: Int) -> Int {
        var i = i
        while i + 8 <= count {
            let blank = ByteWords.blank(word(i))
            if blank != 0 { return i + ByteWords.first(blank) }
            i += 8
        }
        while i < count && base[i] != 0x20 && base[i] != 0x09 { i += 1 }
        return i
    }

    /// First index ≥ i holding `a` or `b` (or `count`).
    @inline(__always) func firstOf(_ a: UInt8, _ b: UInt8, from i: Int) -> Int {
        var i = i
        while i + 8 <= count {
            let x = word(i)
            let hit = ByteWords.equal(x, a) | ByteWords.equal(x, b)
            if hit != 0 { return i + ByteWords.first(hit) }
            i += 8
        }
        while i < count && base[i] != a && base[i] != b { i += 1 }
        return i
    }

    @inline(__always) func hasPrefix(_ s: StaticString, at i: Int) -> Bool {
        let k = s.utf8CodeUnitCount
        guard i >= 0, i + k <= count else { return false }
        return Platform.bytesEqual(base + i, s.utf8Start, count: k)
    }

    /// True when bytes `a..<b` are exactly `s`.
    @inline(__always) func equals(_ a: Int, _ b: Int, _ s: StaticString) -> Bool {
        b - a == s.utf8CodeUnitCount && Platform.bytesEqual(base + a, s.utf8Start, count: b - a)
    }

    /// Index just after `key` where `key` starts at `from` or right after a space (so `size=` does not
    /// match inside `unmapped_size=`); nil if absent.
    @inline(__always) func find(_ key: StaticString, from: Int) -> Int? {
        // Fast path (inlined, so the key's length is a constant): fields come in order, so the key usually
        // starts right after the spaces at `from`.
        let j = skipSpaces(from)
        if hasPrefix(key, at: j) { return j + key.utf8CodeUnitCount }
        return findScanning(key, from: from)
    }

    /// ``find(_:from:)`` when `key` is not the next token: every word start from `from` on. The candidates are
    /// the key's first byte, found by `memchr` (``Platform/firstOffset(of:in:count:)``) rather than a byte loop:
    /// an absent key (the plain `dma_map_sg`'s `nents=`) used to cost a loop over the rest of the line.
    func findScanning(_ key: StaticString, from: Int) -> Int? {
        let k = key.utf8CodeUnitCount
        guard k > 0 else { return nil }
        let first = key.utf8Start.pointee
        var i = from
        while i + k <= count {
            guard let hit = Platform.firstOffset(of: first, in: base + i, count: count - k + 1 - i) else { return nil }
            let j = i + hit
            if (j == from || base[j - 1] == 0x20) && Platform.bytesEqual(base + j, key.utf8Start, count: k) {
                return j + k
            }
            i = j + 1
        }
        return nil
    }

    /// Index of the first occurrence of `s` at or after `from`, anywhere (not only at word starts).
    func search(_ s: StaticString, from: Int = 0) -> Int? {
        let k = s.utf8CodeUnitCount
        guard k > 0 else { return from }
        let first = s.utf8Start.pointee
        var i = from
        while i + k <= count {
            guard let hit = Platform.firstOffset(of: first, in: base + i, count: count - k + 1 - i) else { return nil }
            let j = i + hit
            if Platform.bytesEqual(base + j, s.utf8Start, count: k) { return j }
            i = j + 1
        }
        return nil
    }

    /// Parses hex digits at `i` (an optional `0x`/`0X` prefix is skipped); advances `i`. Nil when there
    /// is no digit or the value overflows 64 bits.
    @inline(__always) func hex(_ i: inout Int) -> UInt64? {
        var j = i
        if j + 1 < count && base[j] == 0x30 && (base[j + 1] | 0x20) == 0x78 { j += 2 }
        let start = j
        var v: UInt64 = 0
        // Eight bytes at a time while eight are left. A word of eight digits appends 32 bits; one whose first
        // `n` bytes are digits (0-7) ends the number: those digits, moved to the word's top with '0's below
        // them, are its value (the byte loop below cost ~12 instructions a digit: a 7-digit phys_addr took 84).
        // Either overflows exactly when the value so far has more than 64 - 4n bits.
        while j + 8 <= count {
            let x = word(j)
            let letters = ByteWords.hexLetters(x)
            let digits = ByteWords.decimalDigits(x) | letters
            if digits == ByteWords.high {
                if v >> 32 != 0 { return nil }
                v = v << 32 | ByteWords.hexDigitsValue(x, letters: letters)
                j += 8
                continue
            }
            let n = ByteWords.first(~digits & ByteWords.high)
            if n > 0 {
                let low = UInt64(8 - n) &* 8  // bits below the digits once moved to the top
                if v >> (64 - 4 * UInt64(n)) != 0 { return nil }
                let zeros = (ByteWords.ones &* 0x30) & ((1 &<< low) &- 1)
                v = v << (4 * UInt64(n)) | ByteWords.hexDigitsValue(x &<< low | zeros, letters: letters &<< low)
                j += n
            }
            if j == start { return nil }
            i = j
            return v
        }
        while j < count {
            let c = base[j]
            let d: UInt8
            if c >= 0x30 && c <= 0x39 {
                d = c - 0x30
            } else {
                let l = c | 0x20
                if l >= 0x61 && l <= 0x66 { d = l - 0x61 + 10 } else { break }
            }
            if v >> 60 != 0 { return nil }
            v = v << 4 | UInt64(d)
            j += 1
        }
        if j == start { return nil }
        i = j
        return v
    }

    /// Parses decimal digits at `i`; advances `i`. Nil when there is no digit or on overflow.
    @inline(__always) func dec(_ i: inout Int) -> UInt64? {
        var j = i
        var v: UInt64 = 0
        // Nineteen digits cannot overflow 64 bits (10^19 - 1 < 2^64): the first nineteen go without the overflow
        // checks (every number of a trace); a twentieth and later ones, if any, with them.
        let unchecked = Swift.min(count, i &+ 19)
        while j < unchecked {
            let c = base[j] &- 0x30
            if c > 9 { break }
            v = v &* 10 &+ UInt64(c)
            j += 1
        }
        if j == unchecked {
            while j < count {
                let c = base[j] &- 0x30
                if c > 9 { break }
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(UInt64(c))
                if o1 || o2 { return nil }
                v = a
                j += 1
            }
        }
        if j == i { return nil }
        i = j
        return v
    }

    /// Parses an optionally negative decimal at `i`.
    func signedDec(_ i: inout Int) -> Int64? {
        var j = i
        var negative = false
        if j < count && base[j] == 0x2D { negative = true; j += 1 }
        guard let v = dec(&j), v <= UInt64(Int64.max) else { return nil }
        i = j
        return negative ? -Int64(v) : Int64(v)
    }

    /// A number that is hex when written with `0x`, decimal otherwise (the VT-d fault reason trap).
    func hexOrDec(_ i: inout Int) -> UInt64? {
        if hasPrefix("0x", at: i) || hasPrefix("0X", at: i) { return hex(&i) }
        return dec(&i)
    }

    /// Seconds with an optional fraction (`3.279753`, `11.918000123`) as nanoseconds; a plain integer
    /// (raw `counter` clocks) is taken as-is. Advances `i`. Inlined: one call a line, in ``FtraceTextImporter``.
    @inline(__always) func seconds(_ i: inout Int) -> UInt64? {
        var j = i
        guard let s = dec(&j) else { return nil }
        if j < count && base[j] == 0x2E {
            j += 1
            var frac: UInt64 = 0
            var digits = 0
            if j + 8 <= count {
                // The fraction's first eight bytes as one word: its leading digits, as the first digits of an
                // eight-digit number (the bytes after them read as '0'), are the fraction in units of 10 ns.
                let x = word(j)
                let n = ByteWords.first(~ByteWords.decimalDigits(x) & ByteWords.high)
                if n == 0 { return nil }
                let kept: UInt64 = n == 8 ? ~0 : (1 &<< (UInt64(n) &* 8)) &- 1
                frac = ByteWords.decimalValue((x & kept) | (ByteWords.ones &* 0x30 & ~kept))
                j += n
                digits = 8
            }
            while j < count {
                let c = base[j] &- 0x30
                if c > 9 { break }
                if digits < 9 { frac = frac * 10 + UInt64(c); digits += 1 }
                j += 1
            }
            if digits == 0 { return nil }
            while digits < 9 { frac *= 10; digits += 1 }
            let (m, o) = s.multipliedReportingOverflow(by: 1_000_000_000)
            if o { return nil }
            i = j
            return m &+ frac
        }
        i = j
        return s
    }

    /// The bytes `a..<b` as a String (repairing invalid UTF-8).
    func string(_ a: Int, _ b: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: base + a, count: max(0, b - a)), as: UTF8.self)
    }

    /// The whole line as a String, cut to `limit` bytes for messages.
    func text(limit: Int = 160) -> String {
        string(0, min(count, limit))
    }

    /// True when the line holds a NUL or other control byte (binary data in a text input).
    func hasControlBytes() -> Bool {
        var i = 0
        while i < count {
            let c = base[i]
            if c < 0x20 && c != 0x09 { return true }
            i += 1
        }
        return false
    }
}

/// Caches small byte strings (device names, event names) → an id, so the hot path compares bytes
/// instead of building Strings: an open-addressing table on a hash of a name's length and its first and last
/// eight bytes (``words(_:_:_:)``). An entry keeps those two words, which spell a name of up to 16 bytes
/// completely, so looking such a name up compares two words and reads no other buffer; longer names also
/// compare their middle bytes. Lookups do not write (no last-hit memory: event names and devices alternate).
/// Against the former table (a hash, then `memcmp`-style compares of a separate byte buffer), `ingest --dry-run`
/// of a 20 MB `gen_ftrace.py` file, two lookups a line: 339.8 → 331.7 M instructions (callgrind).
struct ByteNameCache {
    private struct Entry {
        var first: UInt64
        var last: UInt64
        var hash: UInt64
        /// The name's bytes in ``bytes``.
        var start: Int
        var length: Int
        var id: UInt32
    }

    private var entries: [Entry] = []
    /// The names' bytes one after another.
    private var bytes: [UInt8] = []
    /// Slot → index + 1 into ``entries`` (0 = empty).
    private var slots = [Int32](repeating: 0, count: 64)

    /// How many names are cached.
    var count: Int { entries.count }

    /// The key words of bytes `a..<b`: from 8 bytes on, the first and the last eight (overlapping below 16);
    /// from 4, the first and the last four; below, the bytes themselves. Whole loads inside `a..<b`, never a
    /// byte loop for names of four bytes or more.
    @inline(__always)
    static func words(_ v: LineView, _ a: Int, _ b: Int) -> (first: UInt64, last: UInt64) {
        let n = b - a
        let p = UnsafeRawPointer(v.base + a)
        if n >= 8 {
            return (p.loadUnaligned(as: UInt64.self), p.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self))
        }
        if n >= 4 {
            return (
                UInt64(p.loadUnaligned(as: UInt32.self)),
                UInt64(p.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self))
            )
        }
        var w: UInt64 = 0
        var i = 0
        while i < n {
            w |= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) &<< UInt64(8 * i)
            i += 1
        }
        return (w, 0)
    }

    @inline(__always)
    private static func hash(_ n: Int, _ w: (first: UInt64, last: UInt64)) -> UInt64 {
        var h = (UInt64(truncatingIfNeeded: n) &* 0x9E37_79B9_7F4A_7C15) ^ w.first
        h = (h &* 0xFF51_AFD7_ED55_8CCD) ^ w.last
        h = (h ^ (h >> 29)) &* 0xBF58_476D_1CE4_E5B9
        return h ^ (h >> 32)
    }

    /// The id of bytes `a..<b`, if cached.
    @inline(__always)
    func lookup(_ v: LineView, _ a: Int, _ b: Int) -> UInt32? {
        let n = b - a
        let w = Self.words(v, a, b)
        let h = Self.hash(n, w)
        let mask = slots.count - 1
        var s = Int(truncatingIfNeeded: h) & mask
        while true {
            let k = Int(slots[s])
            if k == 0 { return nil }
            let e = entries[k - 1]
            if e.hash == h && e.length == n && e.first == w.first && e.last == w.last
                && (n <= 16 || sameMiddle(e, v, a))
            {
                return e.id
            }
            s = (s + 1) & mask
        }
    }

    /// Bytes 8..<n-8 of a name longer than 16 bytes (the key words hold the rest).
    private func sameMiddle(_ e: Entry, _ v: LineView, _ a: Int) -> Bool {
        bytes.withUnsafeBufferPointer {
            Platform.bytesEqual($0.baseAddress! + e.start + 8, v.base + a + 8, count: e.length - 16)
        }
    }

    mutating func insert(_ v: LineView, _ a: Int, _ b: Int, id: UInt32) {
        let n = b - a
        let w = Self.words(v, a, b)
        entries.append(
            Entry(first: w.first, last: w.last, hash: Self.hash(n, w), start: bytes.count, length: n, id: id))
        bytes.append(contentsOf: UnsafeBufferPointer(start: v.base + a, count: n))
        if entries.count * 2 > slots.count {
            slots = [Int32](repeating: 0, count: slots.count * 2)
            for k in entries.indices { place(k) }
        } else {
            place(entries.count - 1)
        }
    }

    private mutating func place(_ k: Int) {
        let mask = slots.count - 1
        var s = Int(truncatingIfNeeded: entries[k].hash) & mask
        while slots[s] != 0 { s = (s + 1) & mask }
        slots[s] = Int32(k + 1)
    }

    /// All cached names with their ids.
    var entryNames: [(name: String, id: UInt32)] {
        entries.map { e in (String(decoding: bytes[e.start..<(e.start + e.length)], as: UTF8.self), e.id) }
    }
}
