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
    private struct Stream {
        var base: UnsafePointer<UInt8>?
        var count = 0
        var width = 0
        var cursor = 0
        var max: UInt64 = 0
        var mode: UInt8 = 0
        var present = false
    }

    private var tables = CompactTables()
    /// Indexed by `kind << 4 | field`.
    private let streams: UnsafeMutablePointer<Stream>
    private var used: [Int] = []
    /// Index of the last record of each kind decoded so far in the chunk (-1: none).
    private let last: UnsafeMutablePointer<Int>
    private let zero: UnsafeMutableRawPointer

    static let fieldNames = [
        "flags", "detail", "clock", "device", "source", "timestamp", "address", "address2", "size", "aux", "aux2",
        "position", "ref", "reuse",
    ]

    init() {
        streams = .allocate(capacity: 256 << 4)
        streams.initialize(repeating: Stream(), count: 256 << 4)
        last = .allocate(capacity: 256)
        last.initialize(repeating: -1, count: 256)
        zero = .allocate(byteCount: Event.recordSize, alignment: 8)
        zero.initializeMemory(as: UInt8.self, repeating: 0, count: Event.recordSize)
        used.reserveCapacity(256 << 4)
    }

    deinit {
        tables.deallocate()
        streams.deinitialize(count: 256 << 4)
        streams.deallocate()
        last.deallocate()
        zero.deallocate()
    }

    private static func fail(_ message: String) -> CompactChunkError { CompactChunkError(message: message) }

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
        guard reserved == 0 else { throw Self.fail("reserved header bytes 6-7 are 0x\(String(reserved, radix: 16)), not 0") }
        guard eventCount <= DMATFormat.maxChunkEvents, out.count / Event.recordSize >= eventCount, let obase = out.baseAddress
        else {
            throw Self.fail("\(eventCount) records do not fit the record buffer")
        }
        let kindsAt = CompactLayout.headerSize
        let dirAt = kindsAt + eventCount
        var dataAt = dirAt + streamCount * CompactLayout.entrySize
        guard dataAt <= size else {
            throw Self.fail("\(eventCount) kind bytes and \(streamCount) directory entries need \(dataAt) bytes, the payload has \(size)")
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
                throw Self.fail("directory entry \(s) at byte \(at): (kind \(kind), field \(field)) is out of order or repeated")
            }
            previousKey = key
            let derived = field == CompactLayout.Field.address2 || field == CompactLayout.Field.aux
                || field == CompactLayout.Field.aux2
            let validMode = field >= CompactLayout.Field.ref ? mode == CompactLayout.Mode.raw
                : mode <= CompactLayout.Mode.delta || (derived && mode <= CompactLayout.Mode.fromAddress)
            guard validMode else {
                throw Self.fail("directory entry \(s) at byte \(at): mode \(mode) is not defined for field \(Self.fieldNames[field])")
            }
            guard width <= 8 else { throw Self.fail("directory entry \(s) at byte \(at): width \(width) > 8") }
            guard count <= eventCount else {
                throw Self.fail("directory entry \(s) at byte \(at): \(count) values for \(eventCount) records")
            }
            let bytes = width * count
            guard bytes <= size - dataAt else {
                throw Self.fail("stream (kind \(kind), \(Self.fieldNames[field])) needs \(bytes) bytes at byte \(dataAt), the payload ends at \(size)")
            }
            streams[key] = Stream(
                base: bytes > 0 ? (pbase + dataAt).assumingMemoryBound(to: UInt8.self) : nil, count: count,
                width: width, cursor: 0, max: CompactLayout.maxValue(field), mode: mode, present: true)
            used.append(key)
            dataAt += bytes
        }
        guard dataAt == size else {
            throw Self.fail("streams end at byte \(dataAt) but the payload has \(size) bytes")
        }

        for k in 0..<256 { last[k] = -1 }
        tables.reset()
        let kinds = (pbase + kindsAt).assumingMemoryBound(to: UInt8.self)
        let streams = self.streams
        let zero = UnsafeRawPointer(self.zero)
        typealias F = CompactLayout.Field

        /// Next value of stream `key` for record `i`, its mode applied.
        @inline(__always)
        func value(_ key: Int, _ pred: UInt64, _ size: UInt64, _ address: UInt64, _ i: Int) throws(CompactChunkError) -> UInt64 {
            let s = streams + key
            guard s.pointee.present else {
                throw Self.fail("record \(i) (kind \(key >> 4)) needs field \(Self.fieldNames[key & 15]) but the chunk has no such stream")
            }
            let c = s.pointee.cursor
            let n = s.pointee.count
            guard c < n else {
                throw Self.fail("record \(i) (kind \(key >> 4)): stream \(Self.fieldNames[key & 15]) holds only \(n) values")
            }
            s.pointee.cursor = c &+ 1
            var r: UInt64 = 0
            if var p = s.pointee.base.map({ $0 + c }) {
                let w = s.pointee.width
                var shift: UInt64 = 0
                for _ in 0..<w {
                    r |= UInt64(p.pointee) << shift
                    shift &+= 8
                    p += n
                }
            }
            let v: UInt64
            switch s.pointee.mode {
            case CompactLayout.Mode.raw: v = r
            case CompactLayout.Mode.delta: v = pred &+ CompactLayout.unzigzag(r)
            case CompactLayout.Mode.fromSize: v = size &+ CompactLayout.unzigzag(r)
            default: v = address &+ CompactLayout.unzigzag(r)
            }
            guard v <= s.pointee.max else {
                throw Self.fail("record \(i) (kind \(key >> 4)): \(Self.fieldNames[key & 15]) value \(v) exceeds its field")
            }
            return v
        }

        @inline(__always) func u8(_ p: UnsafeRawPointer, _ o: Int) -> UInt64 { UInt64(p.load(fromByteOffset: o, as: UInt8.self)) }
        @inline(__always) func u16(_ p: UnsafeRawPointer, _ o: Int) -> UInt64 {
            UInt64(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self)))
        }
        @inline(__always) func u32(_ p: UnsafeRawPointer, _ o: Int) -> UInt64 {
            UInt64(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt32.self)))
        }
        @inline(__always) func u64(_ p: UnsafeRawPointer, _ o: Int) -> UInt64 {
            UInt64(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt64.self))
        }

        var prevAny = zero
        for i in 0..<eventCount {
            let kind = kinds[i]
            let k = Int(kind) << 4
            let rec = obase + i &* Event.recordSize
            let li = last[Int(kind)]
            let prev = li >= 0 ? UnsafeRawPointer(obase + li &* Event.recordSize) : zero
            let flags = try value(k | F.flags, u8(prev, 1), 0, 0, i)
            let detail = try value(k | F.detail, u8(prev, 2), 0, 0, i)
            let clock = try value(k | F.clock, u8(prev, 3), 0, 0, i)
            let source = try value(k | F.source, u16(prev, 6), 0, 0, i)
            let ts = try value(k | F.timestamp, u64(prevAny, 8), 0, 0, i)
            let position = try value(k | F.position, u64(prevAny, 48), 0, 0, i)
            let (family, role) = CompactLayout.role(kind)
            var device: UInt64 = 0
            var address: UInt64 = 0
            var size: UInt64 = 0
            var known = false
            if role == .close || role == .peek {
                let r = Int(try value(k | F.ref, 0, 0, 0, i))
                if r > 0 {
                    guard r <= tables.liveCount(family) else {
                        throw Self.fail("record \(i) (kind \(kind)) refers to live mapping \(r) of \(tables.liveCount(family))")
                    }
                    let m = tables.live(family, r - 1)
                    device = UInt64(m.device)
                    address = m.address
                    size = m.size
                    known = true
                    if role == .close { tables.removeLive(family, r - 1) }
                }
            }
            if !known {
                device = try value(k | F.device, u16(prev, 4), 0, 0, i)
                size = try value(k | F.size, u64(prev, 32), 0, 0, i)
                var reused = false
                if role == .open {
                    let c = Int(try value(k | F.reuse, 0, 0, 0, i))
                    if c > 0 {
                        guard let a = tables.takeReleased(family, device: UInt16(device), size: size, c) else {
                            throw Self.fail("record \(i) (kind \(kind)) reuses released mapping \(c), which does not exist")
                        }
                        address = a
                        reused = true
                    }
                }
                if !reused { address = try value(k | F.address, u64(prev, 16), size, 0, i) }
            }
            let address2 = try value(k | F.address2, u64(prev, 24), size, address, i)
            let aux = try value(k | F.aux, u32(prev, 40), size, address, i)
            let aux2 = try value(k | F.aux2, u32(prev, 44), size, address, i)
            let m = CompactMapping(device: UInt16(truncatingIfNeeded: device), address: address, size: size)
            if role == .open {
                tables.open(family, m)
            } else if role == .close {
                tables.release(family, m)
            }

            rec.storeBytes(of: kind, toByteOffset: 0, as: UInt8.self)
            rec.storeBytes(of: UInt8(truncatingIfNeeded: flags), toByteOffset: 1, as: UInt8.self)
            rec.storeBytes(of: UInt8(truncatingIfNeeded: detail), toByteOffset: 2, as: UInt8.self)
            rec.storeBytes(of: UInt8(truncatingIfNeeded: clock), toByteOffset: 3, as: UInt8.self)
            rec.storeBytes(of: UInt16(truncatingIfNeeded: device).littleEndian, toByteOffset: 4, as: UInt16.self)
            rec.storeBytes(of: UInt16(truncatingIfNeeded: source).littleEndian, toByteOffset: 6, as: UInt16.self)
            rec.storeBytes(of: ts.littleEndian, toByteOffset: 8, as: UInt64.self)
            rec.storeBytes(of: address.littleEndian, toByteOffset: 16, as: UInt64.self)
            rec.storeBytes(of: address2.littleEndian, toByteOffset: 24, as: UInt64.self)
            rec.storeBytes(of: size.littleEndian, toByteOffset: 32, as: UInt64.self)
            rec.storeBytes(of: UInt32(truncatingIfNeeded: aux).littleEndian, toByteOffset: 40, as: UInt32.self)
            rec.storeBytes(of: UInt32(truncatingIfNeeded: aux2).littleEndian, toByteOffset: 44, as: UInt32.self)
            rec.storeBytes(of: position.littleEndian, toByteOffset: 48, as: UInt64.self)
            last[Int(kind)] = i
            prevAny = UnsafeRawPointer(rec)
        }
        for key in used where streams[key].cursor != streams[key].count {
            throw Self.fail("stream (kind \(key >> 4), \(Self.fieldNames[key & 15])) holds \(streams[key].count) values, \(streams[key].cursor) were used")
        }
    }
}
