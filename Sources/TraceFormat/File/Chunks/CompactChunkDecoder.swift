/// Why a compact-layout chunk payload could not be decoded (the chunk is then reported as `corrupt_chunk`).
public struct CompactChunkError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What is wrong, naming the byte offset in the payload or the record in the chunk.
    public var message: String

    public var description: String { "compact chunk: \(message)" }
}

/// Decodes a compact-layout chunk payload (`schemas/dmat-format.md` §9a) into 56-byte records.
///
/// Pure function of the payload: nothing carries over between chunks. Storage (stream table, mapping
/// tables) is allocated once per decoder and reused, so decoding allocates nothing per chunk or per event;
/// use one decoder per thread. Every length, count, index and value is checked before use, so a damaged or
/// hostile payload throws ``CompactChunkError`` and never traps or reads out of bounds.
final class CompactChunkDecoder {

    /// The released lists (``CompactTables``) and the live tables (``CompactLiveIndex``, where the list's removal
    /// moves up to 2,048 entries).
    private var tables = CompactTables()
    private var liveTables = CompactLiveIndex(chained: false)
    /// Indexed by `kind << 4 | field`.
    private let streams: UnsafeMutablePointer<CompactStream>
    private var used: [Int] = []
    /// Index of the last record of each kind decoded so far in the chunk (-1: none).
    private let last: UnsafeMutablePointer<Int>
    /// Records of each kind in the chunk, then (while decoding) records of each kind decoded so far.
    private let kindCount: UnsafeMutablePointer<Int>
    private let ordinal: UnsafeMutablePointer<Int>
    /// Per kind: bit f set when every-record field f varies (otherwise its value is the stream's `constant`).
    private let varying: UnsafeMutablePointer<UInt16>
    private let zero: UnsafeMutableRawPointer

    static let fieldNames = [
        "flags", "detail", "clock", "device", "source", "timestamp", "address", "address2", "size", "aux", "aux2",
        "position", "ref", "reuse", "cpu"
    ]

    /// Fields every record of a kind reads (the others depend on the mapping tables).
    static let everyRecord: [Int] = [0, 1, 2, 4, 5, 7, 9, 10, 11]
    /// Fields read by record ordinal: ``everyRecord`` and cpu (every record of a kind that has a cpu stream).
    @inline(__always) static func isColumn(_ f: Int) -> Bool { f == CompactLayout.Field.cpu || everyRecord.contains(f) }

    init() {
        streams = .allocate(capacity: 256 << 4)
        streams.initialize(repeating: CompactStream(), count: 256 << 4)
        last = .allocate(capacity: 256)
        last.initialize(repeating: -1, count: 256)
        kindCount = .allocate(capacity: 256)
        kindCount.initialize(repeating: 0, count: 256)
        ordinal = .allocate(capacity: 256)
        ordinal.initialize(repeating: 0, count: 256)
        varying = .allocate(capacity: 256)
        varying.initialize(repeating: 0, count: 256)
        zero = .allocate(byteCount: Event.recordSize, alignment: 8)
        zero.initializeMemory(as: UInt8.self, repeating: 0, count: Event.recordSize)
        used.reserveCapacity(256 << 4)
    }

    deinit {
        tables.deallocate()
        streams.deinitialize(count: 256 << 4)
        streams.deallocate()
        last.deallocate()
        kindCount.deallocate()
        ordinal.deallocate()
        varying.deallocate()
        zero.deallocate()
    }

    private static func fail(_ message: String) -> CompactChunkError { CompactChunkError(message: message) }

    @inline(__always) private static func ld8(_ p: UnsafeRawPointer, _ o: Int) -> UInt64 {
        UInt64(p.load(fromByteOffset: o, as: UInt8.self))
    }
    @inline(__always) private static func ld16(_ p: UnsafeRawPointer, _ o: Int) -> UInt64 {
        UInt64(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self)))
    }
    @inline(__always) private static func ld32(_ p: UnsafeRawPointer, _ o: Int) -> UInt64 {
        UInt64(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt32.self)))
    }
    @inline(__always) private static func ld64(_ p: UnsafeRawPointer, _ o: Int) -> UInt64 {
        UInt64(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt64.self))
    }

    /// The error for a record at which a read failed (`streams`: the kind's 16 stream slots).
    private static func diagnose(record i: Int, kind: Int, streams: UnsafeMutablePointer<CompactStream>)
        -> CompactChunkError
    {
        var missing: [String] = []
        for f in [
            CompactLayout.Field.ref, CompactLayout.Field.device, CompactLayout.Field.size, CompactLayout.Field.reuse,
            CompactLayout.Field.address
        ] where !streams[f].present || streams[f].cursor >= streams[f].count {
            missing.append(fieldNames[f])
        }
        return fail(
            "record \(i) (kind \(kind)): a value is missing (streams used up or absent: \(missing.joined(separator: ", "))) or wider than its field"
        )
    }

    /// Records per kind byte in the chunk last decoded successfully (256 entries).
    func kindCounts(into counts: UnsafeMutablePointer<UInt64>) {
        for k in 0..<256 { counts[k] = UInt64(kindCount[k]) }
    }

    /// Decodes `payload` (the decompressed zstd frame of a compact chunk whose header declares `eventCount`
    /// records) into the first `eventCount × 56` bytes of `out`.
    func decode(
        _ payload: UnsafeRawBufferPointer, eventCount: Int, into out: UnsafeMutableRawBufferPointer
    ) throws(CompactChunkError) {
        defer {
            for k in used { streams[k].present = false }
            used.removeAll(keepingCapacity: true)
        }
        let size = payload.count
        guard size >= CompactLayout.headerSize, let pbase = payload.baseAddress else {
            throw Self.fail("payload of \(size) bytes is shorter than its 8-byte header")
        }
        let declared = Int(UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
        let streamCount = Int(UInt16(littleEndian: payload.loadUnaligned(fromByteOffset: 4, as: UInt16.self)))
        let reserved = UInt16(littleEndian: payload.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
        guard declared == eventCount else {
            throw Self.fail("payload declares \(declared) records, the chunk header \(eventCount)")
        }
        guard reserved == 0 else { throw Self.fail("reserved header bytes 6-7 are \(Hex.prefixed(reserved)), not 0") }
        guard eventCount <= DMATFormat.maxChunkEvents, out.count / Event.recordSize >= eventCount,
            let obase = out.baseAddress,
            Int(bitPattern: obase) & 7 == 0
        else {
            throw Self.fail("\(eventCount) records do not fit the record buffer")
        }
        let kindsAt = CompactLayout.headerSize
        let dirAt = kindsAt + eventCount
        var dataAt = dirAt + streamCount * CompactLayout.entrySize
        guard dataAt <= size else {
            throw Self.fail(
                "\(eventCount) kind bytes and \(streamCount) directory entries need \(dataAt) bytes, the payload has \(size)"
            )
        }
        var previousKey = -1
        for s in 0..<streamCount {
            let at = dirAt + s * CompactLayout.entrySize
            let kind = Int(payload[at])
            let field = Int(payload[at + 1])
            let mode = payload[at + 2]
            let width = Int(payload[at + 3])
            let count = Int(UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self)))
            let key = kind << 4 | field
            guard field < CompactLayout.Field.count else {
                throw Self.fail("directory entry \(s) at byte \(at): unknown field \(field)")
            }
            guard key > previousKey else {
                throw Self.fail(
                    "directory entry \(s) at byte \(at): (kind \(kind), field \(field)) is out of order or repeated")
            }
            previousKey = key
            let derived =
                field == CompactLayout.Field.address2 || field == CompactLayout.Field.aux
                || field == CompactLayout.Field.aux2
            let validMode =
                CompactLayout.Field.isTableValue(field)
                ? mode == CompactLayout.Mode.raw
                : mode <= CompactLayout.Mode.delta || mode == CompactLayout.Mode.constant
                    || (derived && mode <= CompactLayout.Mode.fromAddress)
            guard validMode else {
                throw Self.fail(
                    "directory entry \(s) at byte \(at): mode \(mode) is not defined for field \(Self.fieldNames[field])"
                )
            }
            guard width <= 8 else { throw Self.fail("directory entry \(s) at byte \(at): width \(width) > 8") }
            guard count <= eventCount else {
                throw Self.fail("directory entry \(s) at byte \(at): \(count) values for \(eventCount) records")
            }
            let constant = mode == CompactLayout.Mode.constant
            let bytes = constant ? width : width * count
            guard bytes <= size - dataAt else {
                throw Self.fail(
                    "stream (kind \(kind), \(Self.fieldNames[field])) needs \(bytes) bytes at byte \(dataAt), the payload ends at \(size)"
                )
            }
            var value: UInt64 = 0
            if constant {
                for j in 0..<width { value |= UInt64(payload[dataAt + j]) << UInt64(8 * j) }
                guard value <= CompactLayout.maxValue(field) else {
                    throw Self.fail(
                        "stream (kind \(kind), \(Self.fieldNames[field])): constant \(value) exceeds its field")
                }
            }
            streams[key] = CompactStream(
                base: bytes > 0 && !constant ? (pbase + dataAt).assumingMemoryBound(to: UInt8.self) : nil, count: count,
                width: constant ? 0 : width, cursor: 0, max: CompactLayout.maxValue(field), constant: value, mode: mode,
                present: true)
            used.append(key)
            dataAt += bytes
        }
        guard dataAt == size else {
            throw Self.fail("streams end at byte \(dataAt) but the payload has \(size) bytes")
        }
        // Fields every record of a kind reads: their streams must hold exactly one value per record of the kind,
        // so the loop below reads them by the record's ordinal within its kind without further checks.
        for k in 0..<256 { kindCount[k] = 0 }
        let kinds = (pbase + kindsAt).assumingMemoryBound(to: UInt8.self)
        for i in 0..<eventCount { kindCount[Int(kinds[i])] &+= 1 }
        for k in 0..<256 where kindCount[k] > 0 {
            var vary: UInt16 = 0
            for f in Self.everyRecord {
                let st = streams[k << 4 | f]
                // All-zero residuals (W = 0) under modes 0 and 1 give 0 throughout, except where the prediction
                // comes from other kinds (timestamp, position); mode 4 gives its constant.
                let fixed =
                    st.mode == CompactLayout.Mode.constant
                    || (st.width == 0 && st.mode <= CompactLayout.Mode.delta && f != CompactLayout.Field.timestamp
                        && f != CompactLayout.Field.position)
                if !fixed { vary |= 1 << UInt16(f) }
                guard st.present else {
                    throw Self.fail(
                        "records of kind \(k) need field \(Self.fieldNames[f]) but the chunk has no such stream")
                }
                guard st.count == kindCount[k] else {
                    throw Self.fail(
                        "stream (kind \(k), \(Self.fieldNames[f])) holds \(st.count) values for \(kindCount[k]) records"
                    )
                }
            }
            // cpu (format 3.0): read by every record of the kind when the chunk has its stream, else 0.
            let cpu = streams[k << 4 | CompactLayout.Field.cpu]
            if cpu.present {
                guard cpu.count == kindCount[k] else {
                    throw Self.fail("stream (kind \(k), cpu) holds \(cpu.count) values for \(kindCount[k]) records")
                }
                if cpu.mode != CompactLayout.Mode.constant { vary |= 1 << UInt16(CompactLayout.Field.cpu) }
            }
            varying[k] = vary
        }
        for key in used where !Self.isColumn(key & 15) || kindCount[key >> 4] == 0 {
            // Conditional fields are counted as they are read; every-record fields of absent kinds must be empty.
            if Self.isColumn(key & 15) && streams[key].count != 0 {
                throw Self.fail(
                    "stream (kind \(key >> 4), \(Self.fieldNames[key & 15])) holds \(streams[key].count) values, no record has that kind"
                )
            }
        }

        for k in 0..<256 {
            last[k] = -1
            ordinal[k] = 0
        }
        tables.reset()
        liveTables.reset()
        let streams = self.streams
        let zero = UnsafeRawPointer(self.zero)
        typealias F = CompactLayout.Field

        var prevAny = zero
        let words = obase.bindMemory(to: UInt64.self, capacity: eventCount &* 7)
        // `bad` is set by a read that finds no value or a value wider than its field; checked once per record.
        var bad = false
        for i in 0..<eventCount {
            let kind = kinds[i]
            let ks = streams + (Int(kind) << 4)
            let li = last[Int(kind)]
            let prev = li >= 0 ? UnsafeRawPointer(obase + li &* Event.recordSize) : zero
            let c = ordinal[Int(kind)]
            ordinal[Int(kind)] = c &+ 1
            let vary = varying[Int(kind)]
            @inline(__always) func varies(_ f: Int) -> Bool { vary & (1 << UInt16(f)) != 0 }
            let flags =
                varies(F.flags) ? compactColumn(ks + F.flags, c, Self.ld8(prev, 1), 0, 0, &bad) : ks[F.flags].constant
            let detail =
                varies(F.detail)
                ? compactColumn(ks + F.detail, c, Self.ld8(prev, 2), 0, 0, &bad) : ks[F.detail].constant
            let clock =
                varies(F.clock) ? compactColumn(ks + F.clock, c, Self.ld8(prev, 3), 0, 0, &bad) : ks[F.clock].constant
            let source =
                varies(F.source)
                ? compactColumn(ks + F.source, c, Self.ld16(prev, 6), 0, 0, &bad) : ks[F.source].constant
            let ts =
                varies(F.timestamp)
                ? compactColumn(ks + F.timestamp, c, Self.ld64(prevAny, 8), 0, 0, &bad) : ks[F.timestamp].constant
            let position =
                varies(F.position)
                ? compactColumn(ks + F.position, c, Self.ld64(prevAny, 48) & Event.positionMask, 0, 0, &bad)
                : ks[F.position].constant
            let cpu =
                varies(F.cpu)
                ? compactColumn(ks + F.cpu, c, Self.ld16(prevAny, 54), 0, 0, &bad)
                : ks[F.cpu].present ? ks[F.cpu].constant : 0
            let (family, role) = CompactLayout.role(kind)
            var device: UInt64 = 0
            var address: UInt64 = 0
            var size: UInt64 = 0
            var known = false
            if role == .close || role == .peek {
                let r = Int(compactNext(ks + F.ref, 0, &bad))
                if r > 0 {
                    guard r <= liveTables.liveCount(family) else {
                        throw Self.fail(
                            "record \(i) (kind \(kind)) refers to live mapping \(r) of \(liveTables.liveCount(family))")
                    }
                    let id = liveTables.select(family, r - 1)
                    let m = liveTables.mapping(id)
                    device = UInt64(m.device)
                    address = m.address
                    size = m.size
                    known = true
                    if role == .close { liveTables.remove(family, id: id) }
                }
            }
            if !known {
                device = compactNext(ks + F.device, Self.ld16(prev, 4), &bad)
                size = compactNext(ks + F.size, Self.ld64(prev, 32), &bad)
                var reused = false
                if role == .open {
                    let c = Int(compactNext(ks + F.reuse, 0, &bad))
                    if c > 0 && !bad {
                        guard
                            let a = tables.takeReleased(
                                family, device: UInt16(truncatingIfNeeded: device), size: size, c)
                        else {
                            throw Self.fail(
                                "record \(i) (kind \(kind)) reuses released mapping \(c), which does not exist")
                        }
                        address = a
                        reused = true
                    }
                }
                if !reused { address = compactNext(ks + F.address, Self.ld64(prev, 16), &bad) }
            }
            let address2 =
                varies(F.address2)
                ? compactColumn(ks + F.address2, c, Self.ld64(prev, 24), size, address, &bad) : ks[F.address2].constant
            let aux =
                varies(F.aux)
                ? compactColumn(ks + F.aux, c, Self.ld32(prev, 40), size, address, &bad) : ks[F.aux].constant
            let aux2 =
                varies(F.aux2)
                ? compactColumn(ks + F.aux2, c, Self.ld32(prev, 44), size, address, &bad) : ks[F.aux2].constant
            if bad { throw Self.diagnose(record: i, kind: Int(kind), streams: ks) }
            let m = CompactMapping(device: UInt16(truncatingIfNeeded: device), address: address, size: size)
            if role == .open {
                liveTables.open(family, m)
            } else if role == .close {
                tables.release(family, m)
            }

            // Seven aligned little-endian words (the buffer is 8-byte aligned and 56 = 7 × 8); every field was
            // checked against its width above, so the ORs cannot overlap.
            let row = words + i &* 7
            row[0] = (UInt64(kind) | flags << 8 | detail << 16 | clock << 24 | device << 32 | source << 48).littleEndian
            row[1] = ts.littleEndian
            row[2] = address.littleEndian
            row[3] = address2.littleEndian
            row[4] = size.littleEndian
            row[5] = (aux | aux2 << 32).littleEndian
            row[6] = (position | cpu << 48).littleEndian
            last[Int(kind)] = i
            prevAny = UnsafeRawPointer(row)
        }
        for key in used where !Self.isColumn(key & 15) && streams[key].cursor != streams[key].count {
            throw Self.fail(
                "stream (kind \(key >> 4), \(Self.fieldNames[key & 15])) holds \(streams[key].count) values, \(streams[key].cursor) were used"
            )
        }
    }
}

/// One stream of a compact payload while it is decoded.
struct CompactStream {
    var base: UnsafePointer<UInt8>?
    var count = 0
    var width = 0
    var cursor = 0
    var max: UInt64 = 0
    /// The value of a constant stream (mode 4).
    var constant: UInt64 = 0
    var mode: UInt8 = 0
    var present = false
}

/// Residual `c` of stream `s` (the caller checked `c < count`).
@inline(__always)
func compactResidual(_ s: UnsafeMutablePointer<CompactStream>, _ c: Int) -> UInt64 {
    let w = s.pointee.width
    guard w > 0, let b = s.pointee.base else { return 0 }
    let n = s.pointee.count
    let p = b + c
    switch w {
    case 1: return UInt64(p[0])
    case 2: return UInt64(p[0]) | UInt64(p[n]) << 8
    case 3: return UInt64(p[0]) | UInt64(p[n]) << 8 | UInt64(p[2 &* n]) << 16
    default:
        var r: UInt64 = 0
        var q = p
        var shift: UInt64 = 0
        for _ in 0..<w {
            r |= UInt64(q.pointee) << shift
            shift &+= 8
            q += n
        }
        return r
    }
}

/// Value `c` of an every-record stream (present and holding one value per record of its kind: checked
/// before decoding). Sets `bad` when the value does not fit its field.
@inline(__always)
func compactColumn(
    _ s: UnsafeMutablePointer<CompactStream>, _ c: Int, _ pred: UInt64, _ size: UInt64, _ address: UInt64,
    _ bad: inout Bool
) -> UInt64 {
    let v: UInt64
    switch s.pointee.mode {
    case CompactLayout.Mode.raw: v = compactResidual(s, c)
    case CompactLayout.Mode.delta: v = pred &+ CompactLayout.unzigzag(compactResidual(s, c))
    case CompactLayout.Mode.fromSize: v = size &+ CompactLayout.unzigzag(compactResidual(s, c))
    case CompactLayout.Mode.fromAddress: v = address &+ CompactLayout.unzigzag(compactResidual(s, c))
    default: return s.pointee.constant
    }
    if v > s.pointee.max { bad = true }
    return v
}

/// The next value of a stream read only by some records (device, size, address, ref, reuse: modes 0, 1 and
/// 4). Sets `bad` when the stream is missing, used up, or the value does not fit its field.
@inline(__always)
func compactNext(_ s: UnsafeMutablePointer<CompactStream>, _ pred: UInt64, _ bad: inout Bool) -> UInt64 {
    let c = s.pointee.cursor
    guard s.pointee.present, c < s.pointee.count else {
        bad = true
        return 0
    }
    s.pointee.cursor = c &+ 1
    let v: UInt64
    switch s.pointee.mode {
    case CompactLayout.Mode.raw: v = compactResidual(s, c)
    case CompactLayout.Mode.delta: v = pred &+ CompactLayout.unzigzag(compactResidual(s, c))
    default: return s.pointee.constant
    }
    if v > s.pointee.max { bad = true }
    return v
}
