/// Constants and limits of the `.dmat` format v1 (`schemas/dmat-format.md`).
public enum DMATFormat {
    /// Newest major version this build reads; it refuses larger ones. Writers declare 3 when events may carry
    /// a CPU (``TraceWriter/Options/cpus``), else 2 when chunks use the compact layout and 1 for a rows-only
    /// file (``ChunkLayout/majorVersion``), so older readers read what they can.
    public static let majorVersion: UInt16 = 3
    /// The major version that added ``Event/cpu`` (record bytes 54–55, compact field 14).
    public static let cpuMajorVersion: UInt16 = 3
    /// Minor version written; a newer minor only adds things an older reader may skip.
    public static let minorVersion: UInt16 = 0
    /// Bytes per event record.
    public static let recordSize = 56

    /// Skippable-frame magic of every dmat side frame (header, strings, metadata, chunk header).
    public static let sideFrameMagic: UInt32 = 0x184D_2A5D
    /// Skippable-frame magic of the zstd seekable format's seek table (our index).
    public static let seekTableMagic: UInt32 = 0x184D_2A5E
    /// The seek table footer's magic number (zstd seekable format).
    public static let seekableFooterMagic: UInt32 = 0x8F92_EAB1
    /// Magic of a zstd data frame.
    public static let zstdFrameMagic: UInt32 = 0xFD2F_B528

    /// Side frame type tags: four ASCII bytes read as a little-endian u32.
    public enum Tag {
        /// `DMAT`: the header frame, always first.
        public static let header: UInt32 = fourCC("DMAT")
        /// `STRS`: string-table additions.
        public static let strings: UInt32 = fourCC("STRS")
        /// `META`: metadata JSON; a later one replaces an earlier one.
        public static let metadata: UInt32 = fourCC("META")
        /// `CHNK`: the header of the event chunk that follows it.
        public static let chunk: UInt32 = fourCC("CHNK")
    }

    /// Largest uncompressed chunk (64 MiB).
    public static let maxChunkBytes = 64 << 20
    /// Largest event count per chunk (`maxChunkBytes / recordSize`).
    public static let maxChunkEvents = maxChunkBytes / recordSize
    /// Largest compressed chunk frame: zstd's bound for `maxChunkBytes`.
    public static let maxChunkFrameBytes = (64 << 20) + (64 << 20) / 255 + (1 << 17)
    /// Largest header frame body (the schema JSON lives in it).
    public static let maxHeaderBytes = 1 << 20
    /// Largest metadata JSON.
    public static let maxMetadataBytes = 16 << 20
    /// Largest string-table frame body.
    public static let maxStringFrameBytes = 16 << 20
    /// Largest single string.
    public static let maxStringBytes = 1 << 20
    /// Most strings in a trace.
    public static let maxStrings = 1 << 24
    /// Most string bytes in a trace (all frames together).
    public static let maxStringTableBytes = 256 << 20
    /// Largest seek table frame.
    public static let maxIndexBytes = 64 << 20

    /// Body size of a `CHNK` frame.
    static let chunkHeaderBodySize = 48
    /// Size of the fixed part of every side frame: magic, size, tag, crc.
    static let sideFramePrefix = 16

    /// The low 32 bits of XXH64 of zero bytes, the seek-table checksum of a span with no event data.
    static let emptyContentChecksum: UInt32 = 0x51D8_E999

    static func fourCC(_ s: StaticString) -> UInt32 {
        precondition(s.utf8CodeUnitCount == 4)
        let p = s.utf8Start
        return UInt32(p[0]) | UInt32(p[1]) << 8 | UInt32(p[2]) << 16 | UInt32(p[3]) << 24
    }

    /// A tag as its four ASCII characters (non-printable bytes as `?`).
    static func tagName(_ tag: UInt32) -> String {
        var s = ""
        for i in 0..<4 {
            let b = UInt8(truncatingIfNeeded: tag >> (8 * UInt32(i)))
            s.append(b >= 0x20 && b < 0x7F ? Character(Unicode.Scalar(b)) : "?")
        }
        return s
    }
}

/// The header frame's fixed fields and its schema section.
public struct TraceHeader: Sendable, Equatable {
    /// Format major version of the file.
    public var major: UInt16
    /// Format minor version of the file.
    public var minor: UInt16
    /// Bytes per record (56 in v1; a reader of v1 refuses anything else).
    public var recordSize: UInt16
    /// Header flags (none defined in v1; readers ignore unknown bits).
    public var flags: UInt16
    /// The writer's nominal events per chunk (informative).
    public var chunkEvents: UInt32
    /// The schema section: record fields and kinds as the writer knew them.
    public var schema: TraceSchema
}

/// The chunk header (`CHNK` frame body) that precedes every event chunk.
public struct ChunkHeader: Sendable, Equatable {
    /// Chunk number, 0-based and consecutive in a well-formed file.
    public var sequence: UInt32
    /// Records in the chunk.
    public var eventCount: UInt32
    /// Decompressed bytes of the chunk's zstd frame: `eventCount × 56` in the rows layout, the encoded payload
    /// size in the compact layout.
    public var uncompressedSize: UInt64
    /// Bytes of the zstd frame that follows the header.
    public var compressedSize: UInt64
    /// Smallest timestamp in the chunk (any clock domain).
    public var minTimestamp: UInt64
    /// Largest timestamp in the chunk.
    public var maxTimestamp: UInt64
    /// Size of the string table when the chunk was written: every string id the chunk uses is below it.
    public var stringCount: UInt32
    /// Bits 0–7: the chunk's ``ChunkLayout`` (0 rows, 1 compact); other bits 0.
    public var flags: UInt32

    /// The layout named by bits 0–7 of ``flags``, nil when this build does not know it.
    public var layout: ChunkLayout? { ChunkLayout(rawValue: UInt8(truncatingIfNeeded: flags)) }

    /// Bytes of the records once decoded (`eventCount × 56`), whatever the layout.
    public var recordBytes: Int { Int(eventCount) * Event.recordSize }
}

/// One chunk as a reader found it.
public struct ChunkInfo: Sendable, Equatable {
    /// The chunk header.
    public var header: ChunkHeader
    /// File offset of the chunk header frame.
    public var headerOffset: UInt64
    /// File offset of the zstd frame holding the records.
    public var frameOffset: UInt64
    /// Index (in file order, counting records of damaged chunks too) of the chunk's first record.
    public var firstRecord: UInt64
    /// False when the chunk's data was found damaged.
    public var intact: Bool
}

/// Little-endian byte building for frames (writer side; never on untrusted input).
struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func append(_ b: some Sequence<UInt8>) { bytes.append(contentsOf: b) }

    /// A complete side frame: magic, size, tag, CRC-32 over tag and body, body.
    static func sideFrame(tag: UInt32, body: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.bytes.reserveCapacity(body.count + DMATFormat.sideFramePrefix)
        w.u32(DMATFormat.sideFrameMagic)
        w.u32(UInt32(body.count + 8))
        w.u32(tag)
        var crc = CRC32()
        withUnsafeBytes(of: tag.littleEndian) { crc.update($0) }
        body.withUnsafeBytes { crc.update($0) }
        w.u32(crc.value)
        w.append(body)
        return w.bytes
    }
}

/// Bounds-checked little-endian reads from untrusted bytes; every read returns nil past the end.
struct ByteReader {
    let base: UnsafeRawBufferPointer
    var offset = 0

    init(_ base: UnsafeRawBufferPointer) { self.base = base }

    var remaining: Int { base.count - offset }

    mutating func u16() -> UInt16? { read(UInt16.self) }
    mutating func u32() -> UInt32? { read(UInt32.self) }
    mutating func u64() -> UInt64? { read(UInt64.self) }

    mutating func read<T: FixedWidthInteger>(_: T.Type) -> T? {
        let n = MemoryLayout<T>.size
        guard remaining >= n else { return nil }
        let v = base.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += n
        return T(littleEndian: v)
    }

    mutating func bytes(_ n: Int) -> UnsafeRawBufferPointer? {
        guard n >= 0, remaining >= n else { return nil }
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: base[offset..<offset + n])
    }
}

/// CRC-32 (ISO-HDLC: the polynomial of zlib's `crc32`, reflected, init and xor-out 0xFFFFFFFF).
struct CRC32 {
    private var state: UInt32 = 0xFFFF_FFFF

    private static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var c = state
        Self.table.withUnsafeBufferPointer { t in
            for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        state = c
    }

    var value: UInt32 { state ^ 0xFFFF_FFFF }

    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c = CRC32()
        c.update(bytes)
        return c.value
    }
}
