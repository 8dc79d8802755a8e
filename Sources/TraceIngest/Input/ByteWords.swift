/// Eight bytes of a line at a time, for the byte scans of ``LineView`` (SWAR: SIMD within a register). A word
/// holds bytes `p[0..<8]` with `p[0]` in its low byte; the classifiers return bit 7 of each byte set when that
/// byte is in the class, exactly per byte (no carry or borrow crosses from one byte into the next), so the
/// first byte of a class is ``first(_:)`` of its flags. ``LineViewTests`` compares every scan built on these
/// with its byte-by-byte form.
enum ByteWords {
    static let ones: UInt64 = 0x0101_0101_0101_0101
    static let high: UInt64 = 0x8080_8080_8080_8080
    static let low7: UInt64 = 0x7F7F_7F7F_7F7F_7F7F

    /// The eight bytes at `p` (the caller has checked that all eight are inside the line).
    @inline(__always)
    static func load(_ p: UnsafePointer<UInt8>) -> UInt64 {
        UInt64(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt64.self))
    }

    /// Bit 7 set in each byte that is not 0.
    @inline(__always)
    static func nonzero(_ x: UInt64) -> UInt64 {
        (((x & low7) &+ low7) | x) & high
    }

    /// Bit 7 set in each byte equal to `b`.
    @inline(__always)
    static func equal(_ x: UInt64, _ b: UInt8) -> UInt64 {
        ~nonzero(x ^ (ones &* UInt64(b))) & high
    }

    /// Bit 7 set in each space or tab.
    @inline(__always)
    static func blank(_ x: UInt64) -> UInt64 {
        ~(nonzero(x ^ (ones &* 0x20)) & nonzero(x ^ (ones &* 0x09))) & high
    }

    /// Bit 7 set in each byte `0`–`9`.
    @inline(__always)
    static func decimalDigits(_ x: UInt64) -> UInt64 {
        // On the low seven bits a byte plus 0x50 reaches bit 7 from '0' (0x30) on, plus 0x46 from ':' (0x3A) on.
        let x7 = x & low7
        return (x7 &+ ones &* 0x50) & ~(x7 &+ ones &* 0x46) & ~x & high
    }

    /// Bit 7 set in each byte `a`–`f` or `A`–`F`.
    @inline(__always)
    static func hexLetters(_ x: UInt64) -> UInt64 {
        let l = (x & low7) | (ones &* 0x20)  // lower case
        return (l &+ ones &* 0x1F) & ~(l &+ ones &* 0x19) & ~x & high
    }

    /// The index (0–8) of the first flagged byte; 8 when none is.
    @inline(__always)
    static func first(_ flags: UInt64) -> Int { flags.trailingZeroBitCount &>> 3 }

    /// The value of eight hex digits (the first one most significant), nil unless all eight are hex digits.
    @inline(__always)
    static func hexValue(_ x: UInt64) -> UInt64? {
        let letters = hexLetters(x)
        guard decimalDigits(x) | letters == high else { return nil }
        return hexDigitsValue(x, letters: letters)
    }

    /// The value of eight hex digits whose letters are flagged in `letters` (``hexLetters(_:)``); every byte
    /// must be a hex digit.
    @inline(__always)
    static func hexDigitsValue(_ x: UInt64, letters: UInt64) -> UInt64 {
        // Each byte's value: its low nibble, plus 9 for a letter ('a' = 0x61 -> 1 + 9).
        let a = (x & (ones &* 0x0F)) &+ (letters &>> 7) &* 9
        // Pairs of nibbles into bytes, pairs of bytes into 16 bits, then the two halves.
        let p = ((a &<< 4) & 0x00F0_00F0_00F0_00F0) | ((a &>> 8) & 0x000F_000F_000F_000F)
        let q = ((p &<< 8) & 0x0000_FF00_0000_FF00) | ((p &>> 16) & 0x0000_00FF_0000_00FF)
        return ((q & 0xFFFF) &<< 16) | ((q &>> 32) & 0xFFFF)
    }

    /// The value of eight decimal digits (the first one most significant); every byte must be a digit.
    @inline(__always)
    static func decimalValue(_ x: UInt64) -> UInt64 {
        var v = x & (ones &* 0x0F)
        v = (v &* (10 &<< 8 &+ 1)) &>> 8 & 0x00FF_00FF_00FF_00FF  // pairs: 10 * first + second
        v = (v &* (100 &<< 16 &+ 1)) &>> 16 & 0x0000_FFFF_0000_FFFF  // quads
        return (v &* (10_000 &<< 32 &+ 1)) &>> 32
    }
}
