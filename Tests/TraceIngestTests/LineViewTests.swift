import Testing

@testable import TraceIngest

/// ``LineView``'s scans read eight bytes at a time (``ByteWords``); each must give exactly what its byte-by-byte
/// form gives (the forms below are the scans as they were before), on every start index of lines made to hit the
/// word paths' edges: runs of blanks and digits across word boundaries, every byte value next to the classes'
/// bounds, values that overflow 64 bits by one digit, lines shorter than a word.
@Suite struct LineViewTests {
    // MARK: The byte-by-byte forms

    static func skipSpaces(_ v: LineView, _ i: Int) -> Int {
        var i = i
        while i < v.count && (v[i] == 0x20 || v[i] == 0x09) { i += 1 }
        return i
    }

    static func tokenEnd(_ v: LineView, _ i: Int) -> Int {
        var i = i
        while i < v.count && v[i] != 0x20 && v[i] != 0x09 { i += 1 }
        return i
    }

    static func firstOf(_ v: LineView, _ a: UInt8, _ b: UInt8, _ i: Int) -> Int {
        var i = i
        while i < v.count && v[i] != a && v[i] != b { i += 1 }
        return i
    }

    static func hex(_ v: LineView, _ i: inout Int) -> UInt64? {
        var j = i
        if j + 1 < v.count && v[j] == 0x30 && (v[j + 1] | 0x20) == 0x78 { j += 2 }
        let start = j
        var x: UInt64 = 0
        while j < v.count {
            let c = v[j]
            let d: UInt8
            if c >= 0x30 && c <= 0x39 {
                d = c - 0x30
            } else {
                let l = c | 0x20
                if l >= 0x61 && l <= 0x66 { d = l - 0x61 + 10 } else { break }
            }
            if x >> 60 != 0 { return nil }
            x = x << 4 | UInt64(d)
            j += 1
        }
        if j == start { return nil }
        i = j
        return x
    }

    static func dec(_ v: LineView, _ i: inout Int) -> UInt64? {
        var j = i
        var x: UInt64 = 0
        while j < v.count {
            let c = v[j] &- 0x30
            if c > 9 { break }
            let (m, o1) = x.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(c))
            if o1 || o2 { return nil }
            x = a
            j += 1
        }
        if j == i { return nil }
        i = j
        return x
    }

    static func seconds(_ v: LineView, _ i: inout Int) -> UInt64? {
        var j = i
        guard let s = dec(v, &j) else { return nil }
        if j < v.count && v[j] == 0x2E {
            j += 1
            var frac: UInt64 = 0
            var digits = 0
            while j < v.count {
                let c = v[j] &- 0x30
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

    // MARK: Lines

    /// Bytes next to the bounds of every class the word scans tell apart, and the classes' members.
    static let alphabet: [UInt8] =
        Array("0123456789abcdefABCDEFgGxX:.- \t/@`[{".utf8) + [
            0x00, 0x01, 0x08, 0x0A, 0x10, 0x19, 0x1F, 0x21, 0x29, 0x2F
        ]
        + [0x3A, 0x40, 0x47, 0x60, 0x67, 0x7F, 0x80, 0x89, 0xA0, 0xB0, 0xC1, 0xE6, 0xFF]

    /// Lines of random pieces: runs of blanks, hex and decimal digits of every length up to 20, timestamps, single
    /// bytes of ``alphabet``.
    static func lines(count: Int, seed: UInt64) -> [[UInt8]] {
        var rng = SplitMix(seed)
        var out: [[UInt8]] = []
        for _ in 0..<count {
            var line: [UInt8] = []
            let pieces = rng.below(8)
            for _ in 0..<pieces {
                let n = rng.below(21)
                switch rng.below(6) {
                case 0: line += (0..<n).map { _ in rng.below(2) == 0 ? 0x20 : (rng.below(4) == 0 ? 0x09 : 0x20) }
                case 1: line += (0..<n).map { _ in Array("0123456789abcdefABCDEF".utf8)[rng.below(22)] }
                case 2: line += (0..<n).map { _ in UInt8(0x30 + rng.below(10)) }
                case 3:
                    line += Array("\(rng.below(100_000)).".utf8) + (0..<n).map { _ in UInt8(0x30 + rng.below(10)) }
                    line += Array(": ".utf8)
                case 4: line += Array((rng.below(2) == 0 ? "0x" : "0X").utf8)
                default: line += (0..<max(1, n / 4)).map { _ in alphabet[rng.below(alphabet.count)] }
                }
            }
            out.append(line)
        }
        // Values at the edge of 64 bits, in hex and decimal, with and without leading zeros.
        for s in [
            "ffffffffffffffff", "10000000000000000", "0000000000000000ffffffffffffffff", "00000000ffffffff1",
            "0x0123456789abcdef0", "fffffffff", "123456789.123456789123:", "18446744073.709551615:",
            "18446744074.000000000:", "1.00000000:", "1.0000000:", "1.123456789:", "7.", "7.x", "00000000.00000000:",
            "18446744073709551615", "18446744073709551616", "99999999999999999999", "1844674407370955161 ",
            "0000000000000000000018446744073709551615", "9999999999999999999", "10000000000000000000x"
        ] {
            out.append(Array(s.utf8))
        }
        return out
    }

    struct SplitMix {
        var state: UInt64
        init(_ seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    /// Every scan from every start index of `line` against its byte-by-byte form.
    static func compare(_ line: [UInt8]) {
        line.withUnsafeBufferPointer { b in
            let v = LineView(UnsafeRawBufferPointer(b))
            for i in 0...v.count {
                #expect(v.skipSpaces(i) == skipSpaces(v, i), "skipSpaces \(line) at \(i)")
                #expect(v.tokenEnd(i) == tokenEnd(v, i), "tokenEnd \(line) at \(i)")
                #expect(v.firstOf(0x3A, 0x20, from: i) == firstOf(v, 0x3A, 0x20, i), "firstOf \(line) at \(i)")
                var a = i, b = i
                #expect(v.hex(&a) == hex(v, &b) && a == b, "hex \(line) at \(i)")
                a = i
                b = i
                #expect(v.dec(&a) == dec(v, &b) && a == b, "dec \(line) at \(i)")
                a = i
                b = i
                #expect(v.seconds(&a) == seconds(v, &b) && a == b, "seconds \(line) at \(i)")
            }
        }
    }

    @Test func wordScansAgreeWithByteScans() {
        for line in Self.lines(count: 3000, seed: 19) { Self.compare(line) }
    }

    /// Twin: the comparison sees a difference. A reference form that stops one byte early disagrees on these lines.
    @Test func theComparisonTellsScansApart() {
        var differ = 0
        for line in Self.lines(count: 200, seed: 19) {
            line.withUnsafeBufferPointer { b in
                let v = LineView(UnsafeRawBufferPointer(b))
                for i in 0..<v.count where v.tokenEnd(i) != max(i, Self.tokenEnd(v, i) - 1) { differ += 1 }
            }
        }
        #expect(differ > 0)
    }

    // MARK: findScanning

    /// The scan as it was: every index from `from` on, a word start (`from` itself or after a space) holding `key`.
    static func findScanning(_ v: LineView, _ key: [UInt8], _ from: Int) -> Int? {
        var i = from
        while i + key.count <= v.count {
            if (i == from || v[i - 1] == 0x20) && (0..<key.count).allSatisfy({ v[i + $0] == key[$0] }) {
                return i + key.count
            }
            i += 1
        }
        return nil
    }

    /// Lines of keys, pieces of keys, their first bytes, blanks and other bytes.
    static func keyLines(count: Int, seed: UInt64) -> [[UInt8]] {
        let pieces = ["nents=", "ents=", "n", "nent", "s", "size=", "unmapped_size=", " ", "  ", "\t", "x", "=", "1/2"]
            .map { Array($0.utf8) }
        var rng = SplitMix(seed)
        return (0..<count).map { _ in (0..<rng.below(12)).flatMap { _ in pieces[rng.below(pieces.count)] } }
    }

    /// ``LineView/findScanning(_:from:)`` (memchr for the key's first byte) against the byte loop, for keys that
    /// start with a byte frequent in the lines, one that never occurs, and keys inside other keys, from every index.
    @Test func findScanningAgreesWithTheByteLoop() {
        var found = 0
        for line in Self.keyLines(count: 2000, seed: 29) {
            line.withUnsafeBufferPointer { b in
                let v = LineView(UnsafeRawBufferPointer(b))
                for i in 0...v.count {
                    for (key, bytes) in [
                        ("nents=" as StaticString, "nents="), ("ents=", "ents="), ("size=", "size="), ("s", "s"),
                        ("qq=", "qq=")
                    ] {
                        let got = v.findScanning(key, from: i)
                        #expect(got == Self.findScanning(v, Array(bytes.utf8), i), "\(bytes) in \(line) from \(i)")
                        if got != nil { found += 1 }
                    }
                }
            }
        }
        #expect(found > 1000)
    }

    // MARK: ByteNameCache

    /// Names at the edges of ``ByteNameCache``'s key words: every length from 0 to 40 (below four, four to
    /// seven, eight to sixteen, longer), and twins of each that differ in one byte only, at every position
    /// (those of names longer than 16 bytes share both key words, so only the middle comparison tells them
    /// apart), or in length only (a trailing NUL).
    static func cacheNames() -> (kept: [[UInt8]], probes: [[UInt8]]) {
        var rng = SplitMix(23)
        var kept: [[UInt8]] = []
        var probes: [[UInt8]] = []
        for n in 0...40 {
            let name = (0..<n).map { _ in UInt8(0x61 + rng.below(26)) }
            kept.append(name)
            probes.append(name)
            for k in 0..<n {
                var twin = name
                twin[k] ^= 0x01
                probes.append(twin)
                if rng.below(3) == 0 { kept.append(twin) }
            }
            probes.append(name + [0])
        }
        return (kept, probes)
    }

    /// ``ByteNameCache/lookup(_:_:_:)`` against a dictionary of the same names, each probe read in place from
    /// a longer line (bytes before and after it, so a read outside the name would change the answer).
    @Test func nameCacheAgreesWithADictionary() {
        let (kept, probes) = Self.cacheNames()
        var cache = ByteNameCache()
        var reference: [[UInt8]: UInt32] = [:]
        for name in kept where reference[name] == nil {
            let id = UInt32(reference.count)
            reference[name] = id
            name.withUnsafeBufferPointer { b in
                cache.insert(LineView(UnsafeRawBufferPointer(b)), 0, b.count, id: id)
            }
        }
        #expect(cache.count == reference.count)
        var misses = 0
        for (k, probe) in probes.enumerated() {
            let pad = k % 9
            let line = [UInt8](repeating: 0x7A, count: pad) + probe + [UInt8](repeating: 0x7A, count: 9 - pad)
            line.withUnsafeBufferPointer { b in
                let got = cache.lookup(LineView(UnsafeRawBufferPointer(b)), pad, pad + probe.count)
                #expect(got == reference[probe], "lookup of \(probe) (\(probe.count) bytes)")
            }
            if reference[probe] == nil { misses += 1 }
        }
        // The probes include names that are not cached, of every length class.
        #expect(misses > 100)
        #expect(cache.entryNames.count == reference.count)
    }

    /// ``ByteWords``' values against the numbers they spell, and nil (hex) for a word with one non-digit.
    @Test func wordValues() {
        func word(_ s: String) -> UInt64 {
            Array(s.utf8).withUnsafeBufferPointer { ByteWords.load($0.baseAddress!) }
        }
        #expect(ByteWords.hexValue(word("0123abCD")) == 0x0123_ABCD)
        #expect(ByteWords.hexValue(word("ffffffff")) == 0xFFFF_FFFF)
        #expect(ByteWords.hexValue(word("fffffffg")) == nil)
        #expect(ByteWords.hexValue(word("0000000:")) == nil)
        #expect(ByteWords.decimalValue(word("12345678")) == 12_345_678)
        #expect(ByteWords.decimalValue(word("99999999")) == 99_999_999)
        #expect(ByteWords.decimalValue(word("00000001")) == 1)
    }
}
