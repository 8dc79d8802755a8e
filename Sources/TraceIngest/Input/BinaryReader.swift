/// Bounds-checked reads of fixed-width integers and C strings from untrusted bytes.
///
/// Every read checks `offset + width <= count` without overflow and throws ``IngestError/truncated`` naming
/// the file and the absolute byte offset (`base + offset`), so a damaged input never traps. `base` is the
/// position of `bytes[0]` in the file a person would open (0 for the file itself; a section's start when
/// reading a decompressed section, whose offsets are then reported relative to that section start).
struct BinaryReader {
    let bytes: UnsafeRawBufferPointer
    let bigEndian: Bool
    let path: String
    let base: UInt64
    /// Names the structure being read in error messages (`section 18 (decompressed)`, ...).
    let context: String

    init(_ bytes: UnsafeRawBufferPointer, bigEndian: Bool = false, path: String, base: UInt64 = 0, context: String = "")
    {
        self.bytes = bytes
        self.bigEndian = bigEndian
        self.path = path
        self.base = base
        self.context = context
    }

    var count: Int { bytes.count }

    /// The absolute offset used in messages.
    func position(_ offset: Int) -> UInt64 { base &+ UInt64(max(offset, 0)) }

    /// The offset named is where the data ends when `offset` lies past it (a size or pointer read from a
    /// cut file points beyond its end); the reason then says where the structure was declared to start.
    func truncated(_ offset: Int, _ what: String) -> IngestError {
        var reason = what
        if offset > bytes.count { reason += " declared at byte \(position(offset)), past the end" }
        if !context.isEmpty { reason += " (\(context))" }
        return .truncated(path: path, offset: position(min(offset, bytes.count)), reason: reason)
    }

    func bad(_ offset: Int, _ what: String) -> IngestError {
        .badFormat(path: path, offset: position(offset), reason: context.isEmpty ? what : "\(what) (\(context))")
    }

    /// True when `n` bytes can be read at `offset`.
    @inline(__always) func has(_ offset: Int, _ n: Int) -> Bool {
        offset >= 0 && n >= 0 && offset <= bytes.count && n <= bytes.count - offset
    }

    @inline(__always) func check(_ offset: Int, _ n: Int, _ what: String) throws(IngestError) {
        if !has(offset, n) { throw truncated(offset, "\(what) needs \(n) bytes") }
    }

    func u8(_ o: Int, _ what: String = "u8") throws(IngestError) -> UInt8 {
        try check(o, 1, what)
        return bytes.load(fromByteOffset: o, as: UInt8.self)
    }

    func u16(_ o: Int, _ what: String = "u16") throws(IngestError) -> UInt16 {
        try check(o, 2, what)
        let v = bytes.loadUnaligned(fromByteOffset: o, as: UInt16.self)
        return bigEndian ? UInt16(bigEndian: v) : UInt16(littleEndian: v)
    }

    func u32(_ o: Int, _ what: String = "u32") throws(IngestError) -> UInt32 {
        try check(o, 4, what)
        let v = bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self)
        return bigEndian ? UInt32(bigEndian: v) : UInt32(littleEndian: v)
    }

    func u64(_ o: Int, _ what: String = "u64") throws(IngestError) -> UInt64 {
        try check(o, 8, what)
        let v = bytes.loadUnaligned(fromByteOffset: o, as: UInt64.self)
        return bigEndian ? UInt64(bigEndian: v) : UInt64(littleEndian: v)
    }

    /// Unchecked variants for loops that checked the whole range once.
    @inline(__always) func u32Unchecked(_ o: Int) -> UInt32 {
        let v = bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self)
        return bigEndian ? UInt32(bigEndian: v) : UInt32(littleEndian: v)
    }

    /// An unsigned integer of `size` bytes (1, 2, 4 or 8); `signed` sign-extends into the 64-bit pattern.
    func integer(_ o: Int, size: Int, signed: Bool) throws(IngestError) -> UInt64 {
        switch size {
        case 1:
            let v = try u8(o)
            return signed ? UInt64(bitPattern: Int64(Int8(bitPattern: v))) : UInt64(v)
        case 2:
            let v = try u16(o)
            return signed ? UInt64(bitPattern: Int64(Int16(bitPattern: v))) : UInt64(v)
        case 4:
            let v = try u32(o)
            return signed ? UInt64(bitPattern: Int64(Int32(bitPattern: v))) : UInt64(v)
        case 8:
            return try u64(o)
        default:
            throw bad(o, "integer field of \(size) bytes")
        }
    }

    /// A view of `n` bytes at `offset`.
    func slice(_ o: Int, _ n: Int, _ what: String) throws(IngestError) -> UnsafeRawBufferPointer {
        try check(o, n, what)
        return UnsafeRawBufferPointer(rebasing: bytes[o..<(o + n)])
    }

    /// A NUL-terminated string starting at `offset` (at most `maxLength` bytes before the NUL); returns the
    /// string and the offset just past the NUL.
    func cString(_ o: Int, maxLength: Int = 4096, _ what: String) throws(IngestError) -> (String, Int) {
        guard has(o, 0) else { throw truncated(o, what) }
        var end = o
        let stop = min(bytes.count, o + maxLength + 1)
        while end < stop && bytes[end] != 0 { end += 1 }
        guard end < bytes.count else { throw truncated(o, "\(what): no terminating NUL") }
        guard bytes[end] == 0 else { throw bad(o, "\(what): longer than \(maxLength) bytes") }
        return (String(decoding: UnsafeRawBufferPointer(rebasing: bytes[o..<end]), as: UTF8.self), end + 1)
    }

    /// True when the bytes at `offset` equal `literal`.
    func matches(_ o: Int, _ literal: [UInt8]) -> Bool {
        guard has(o, literal.count) else { return false }
        for i in 0..<literal.count where bytes[o + i] != literal[i] { return false }
        return true
    }

    /// Requires `literal` at `offset`: `truncated` when the bytes end first, `badFormat` when they differ.
    func expect(_ o: Int, _ literal: [UInt8], _ what: String) throws(IngestError) {
        guard has(o, literal.count) else { throw truncated(o, what) }
        guard matches(o, literal) else { throw bad(o, "\(what) expected") }
    }
}
