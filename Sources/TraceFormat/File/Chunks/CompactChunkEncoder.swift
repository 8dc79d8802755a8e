/// Encodes 56-byte records as a compact-layout chunk payload (`schemas/dmat-format.md` §9a).
///
/// A pure function of the records (nothing carries over between chunks); storage is allocated for the
/// largest chunk seen and reused. Per (kind, field) stream the encoder picks the residual mode with the
/// smallest estimated size (order-0 entropy of each byte plane over a sample), which the format leaves to
/// the writer: any choice decodes to the same records.
final class CompactChunkEncoder {
    /// The released lists (and, for ``CompactLiveSearch/scan``, the live tables) as the format defines them.
    private var tables: CompactTables
    /// The live tables for ``CompactLiveSearch/indexed``.
    private var index = CompactLiveIndex(chained: true)
    private let search: CompactLiveSearch
    private var capacity = 0
    /// The records grouped by kind (a counting sort), each as a ``sortedStride``-byte copy: the 56-byte
    /// record, then the timestamp and bytes 48–55 of the record before it in the chunk (zero for the first),
    /// which predict its timestamp, position and cpu. Every stream is then read front to back from one
    /// contiguous run. Read through an index, the records' field loads were the encoder's two hottest
    /// instructions, 29 % of its own samples (`perf annotate`); the copy took `ingest --layout compact` of 200 MB
    /// from 0.70 to 0.65 s of user CPU.
    private var sorted = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 16)
    /// Per record (in record order): its place in ``sorted``.
    private var slot = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    /// Each kind's first place in ``sorted`` (and, at 256, the record count); then, while sorting, its next place.
    private let kindStart = UnsafeMutablePointer<Int>.allocate(capacity: 257)
    private let kindFill = UnsafeMutablePointer<Int>.allocate(capacity: 256)
    static let sortedStride = Event.recordSize + 16
    /// Per kind byte: some record of the chunk carries a CPU.
    private var kindHasCPU = [Bool](repeating: false, count: 256)
    /// Per place in ``sorted``: bit f set when field f is coded in a stream.
    private var mask = UnsafeMutablePointer<UInt16>.allocate(capacity: 1)
    /// Per place in ``sorted``: the `ref` or `reuse` value.
    private var refs = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
    private var residuals = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
    private var data = UnsafeMutableRawBufferPointer.allocate(byteCount: 1, alignment: 16)
    private var payload = UnsafeMutableRawBufferPointer.allocate(byteCount: 1, alignment: 16)
    private var histogram = UnsafeMutablePointer<UInt32>.allocate(capacity: 4 * 8 * 256)
    /// Per (kind, field): records of the chunk that code the field, counted by the mapping model for the fields
    /// not every record of a kind codes (one pass, where counting per stream took one pass per field).
    private let coded = UnsafeMutablePointer<Int32>.allocate(capacity: 256 * 16)
    private var directory: [UInt8] = []

    /// Values sampled per stream when estimating which mode is smallest. 512 instead of 2,048: 7 % fewer
    /// instructions for `ingest --layout compact` (callgrind, 20 MB of `gen_ftrace.py` text: 563.0 -> 525.4 M);
    /// files 0.04 % larger on that text's 200 MB and 3.7 % smaller on `synth --events 3M` (the estimate is an
    /// order-0 entropy, not zstd's size). Streams shorter than this are sampled whole either way.
    static let samples = 512

    /// - Parameter search: how a release finds its live mapping; the bytes are the same for ``CompactLiveSearch/scan``
    ///   and ``CompactLiveSearch/indexed`` (the default, without the scan's O(n) comparisons and moves).
    /// - Parameter filterReleased: the released lists keep the filter that skips most of their scans (the default;
    ///   the bytes are the same without it).
    init(search: CompactLiveSearch = .indexed, filterReleased: Bool = true) {
        self.search = search
        tables = CompactTables(filterReleased: filterReleased)
    }

    deinit {
        tables.deallocate()
        histogram.deallocate()
        coded.deallocate()
        kindStart.deallocate()
        kindFill.deallocate()
        deallocateRecordBuffers()
    }

    /// The buffers sized by the chunk's record count (``reserve(_:perEvent:)`` replaces them).
    private func deallocateRecordBuffers() {
        sorted.deallocate()
        slot.deallocate()
        mask.deallocate()
        refs.deallocate()
        residuals.deallocate()
        data.deallocate()
        payload.deallocate()
    }

    private func reserve(_ n: Int, perEvent: Int) {
        guard n > capacity || perEvent > bytesPerEvent else { return }
        deallocateRecordBuffers()
        sorted = .allocate(byteCount: n * Self.sortedStride, alignment: 16)
        slot = .allocate(capacity: n)
        mask = .allocate(capacity: n)
        refs = .allocate(capacity: n)
        residuals = .allocate(capacity: n)
        // A payload larger than the rows layout is not used (the writer falls back to rows), so the data and
        // payload buffers never need more than the records' own size plus the header, kinds and directory.
        data = .allocate(byteCount: n * perEvent, alignment: 16)
        payload = .allocate(
            byteCount: n * perEvent + n + CompactLayout.headerSize + 256 * 16 * CompactLayout.entrySize, alignment: 16)
        capacity = n
        bytesPerEvent = perEvent
    }

    private var bytesPerEvent = 0

    /// Encodes `records` (a multiple of 56 bytes). Returns the payload, valid until the next call, or nil when
    /// it would be larger than the records themselves (the caller then writes the chunk in the rows layout).
    /// `anySize` (tests) returns the payload whatever its size.
    func encode(_ records: UnsafeRawBufferPointer, anySize: Bool = false) -> UnsafeRawBufferPointer? {
        let n = records.count / Event.recordSize
        guard n > 0, n <= DMATFormat.maxChunkEvents, let rbase = records.baseAddress else { return nil }
        // At most 15 streams of 8-byte values per record.
        let perEvent = anySize ? CompactLayout.Field.count * 8 : Event.recordSize
        reserve(n, perEvent: perEvent)
        typealias F = CompactLayout.Field
        @inline(__always) func kindOf(_ i: Int) -> UInt8 {
            rbase.load(fromByteOffset: i &* Event.recordSize, as: UInt8.self)
        }
        @inline(__always) func rec(_ i: Int) -> UnsafeRawPointer { rbase + i &* Event.recordSize }
        @inline(__always) func u64(_ p: UnsafeRawPointer, _ o: Int) -> UInt64 {
            UInt64(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt64.self))
        }
        @inline(__always) func u16(_ p: UnsafeRawPointer, _ o: Int) -> UInt16 {
            UInt16(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self))
        }

        // Group the records by kind, each with its predecessor's timestamp and bytes 48-55.
        let (kindStart, fill) = (self.kindStart, self.kindFill)
        kindStart.update(repeating: 0, count: 257)
        // The payload's kind bytes (at a fixed offset, after the header) are written on the way.
        let kindBytes = payload.baseAddress!.advanced(by: CompactLayout.headerSize)
        for i in 0..<n {
            let k = kindOf(i)
            kindBytes.storeBytes(of: k, toByteOffset: i, as: UInt8.self)
            kindStart[Int(k) &+ 1] &+= 1
        }
        for k in 0..<256 { kindStart[k &+ 1] &+= kindStart[k] }
        fill.update(from: kindStart, count: 256)
        let (sorted, slot, mask, refs, coded) = (self.sorted, self.slot, self.mask, self.refs, self.coded)
        var previous: (UInt64, UInt64) = (0, 0)
        for i in 0..<n {
            let k = Int(kindOf(i))
            let o = fill[k]
            fill[k] = o &+ 1
            slot[i] = Int32(truncatingIfNeeded: o)
            let p = rec(i)
            let q = sorted + o &* Self.sortedStride
            q.copyMemory(from: p, byteCount: Event.recordSize)
            q.storeBytes(of: previous.0, toByteOffset: Event.recordSize, as: UInt64.self)
            q.storeBytes(of: previous.1, toByteOffset: Event.recordSize + 8, as: UInt64.self)
            previous = (
                p.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                p.loadUnaligned(fromByteOffset: 48, as: UInt64.self)
            )
        }

        // Kinds with a record whose CPU is recorded code a cpu stream (format 3.0); the others read none.
        for k in 0..<256 { kindHasCPU[k] = false }
        for i in 0..<n where u16(rec(i), 54) != 0 { kindHasCPU[Int(kindOf(i))] = true }

        // Run the mapping model in record order: which fields each record codes, and its ref/reuse value.
        tables.reset()
        if search == .indexed { index.reset() }
        let always: UInt16 =
            1 << F.flags | 1 << F.detail | 1 << F.clock | 1 << F.source | 1 << F.timestamp
            | 1 << F.position | 1 << F.address2 | 1 << F.aux | 1 << F.aux2
        coded.update(repeating: 0, count: 256 * 16)
        for i in 0..<n {
            let p = rec(i)
            let kind = p.load(as: UInt8.self)
            let m = CompactMapping(device: u16(p, 4), address: u64(p, 16), size: u64(p, 32))
            let (family, role) = CompactLayout.role(kind)
            var bits = always
            if kindHasCPU[Int(kind)] { bits |= 1 << F.cpu }
            var value: UInt32 = 0
            var known = false
            if role == .close || role == .peek {
                bits |= 1 << F.ref
                switch search {
                case .indexed:
                    if let (j, id) = index.find(family, m) {
                        value = UInt32(j + 1)
                        known = true
                        if role == .close { index.remove(family, id: id) }
                    }
                case .scan:
                    if let j = tables.findLive(family, m) {
                        value = UInt32(j + 1)
                        known = true
                        if role == .close { tables.removeLive(family, j) }
                    }
                case .none:
                    break
                }
            }
            if !known {
                bits |= 1 << F.device | 1 << F.size
                var reused = false
                if role == .open {
                    bits |= 1 << F.reuse
                    if let c = tables.releasedRank(family, m) {
                        _ = tables.takeReleased(family, device: m.device, size: m.size, c)
                        value = UInt32(c)
                        reused = true
                    }
                }
                if !reused { bits |= 1 << F.address }
            }
            if role == .open {
                if search == .indexed { index.open(family, m) } else { tables.open(family, m) }
            } else if role == .close {
                tables.release(family, m)
            }
            let o = Int(slot[i])
            mask[o] = bits
            refs[o] = value
            var variable = bits & ~always & ~(1 << F.cpu)
            while variable != 0 {
                coded[Int(kind) &* 16 &+ variable.trailingZeroBitCount] &+= 1
                variable &= variable &- 1
            }
        }

        // One stream per (kind, field) that some record codes, in (kind, field) order.
        directory.removeAll(keepingCapacity: true)
        var dataSize = 0
        let limit = anySize ? Int.max : n * Event.recordSize - CompactLayout.headerSize - n
        var streamCount = 0
        for kind in 0..<256 {
            let start = kindStart[kind]
            let end = kindStart[kind + 1]
            guard end > start else { continue }
            for field in 0..<F.count {
                let bit = UInt16(1) << UInt16(field)
                let everyRecord = always & bit != 0 || (field == F.cpu && kindHasCPU[kind])
                let count = everyRecord ? end - start : field == F.cpu ? 0 : Int(coded[kind &* 16 &+ field])
                guard count > 0 else { continue }
                // A field with one value throughout is stored once (mode 4).
                if !F.isTableValue(field),
                    let v = constantValue(field: field, start: start, end: end, bit: bit)
                {
                    let width = (64 - v.leadingZeroBitCount + 7) / 8
                    guard dataSize + width + (streamCount + 1) * CompactLayout.entrySize <= limit else { return nil }
                    for j in 0..<width {
                        data.storeBytes(
                            of: UInt8(truncatingIfNeeded: v >> UInt64(8 * j)), toByteOffset: dataSize + j,
                            as: UInt8.self)
                    }
                    dataSize += width
                    directory.append(contentsOf: [UInt8(kind), UInt8(field), CompactLayout.Mode.constant, UInt8(width)])
                    withUnsafeBytes(of: UInt32(count).littleEndian) { directory.append(contentsOf: $0) }
                    streamCount += 1
                    continue
                }
                let mode = chooseMode(field: field, start: start, end: end, count: count)
                // Residuals of the stream, in record order.
                var c = 0
                var maxResidual: UInt64 = 0
                let residuals = self.residuals
                if F.isTableValue(field) {
                    for o in start..<end where mask[o] & bit != 0 {
                        residuals[c] = UInt64(refs[o])
                        maxResidual |= residuals[c]
                        c += 1
                    }
                } else {
                    let access = CompactFieldAccess(field)
                    for o in start..<end where mask[o] & bit != 0 {
                        let r = Self.residual(
                            access, mode: mode, record: sorted + o &* Self.sortedStride, first: o == start)
                        residuals[c] = r
                        maxResidual |= r
                        c += 1
                    }
                }
                let width = (64 - maxResidual.leadingZeroBitCount + 7) / 8
                let bytes = width * count
                guard dataSize + bytes + (streamCount + 1) * CompactLayout.entrySize <= limit else { return nil }
                let out = data.baseAddress! + dataSize
                for j in 0..<width {
                    let plane = (out + j * count).assumingMemoryBound(to: UInt8.self)
                    let shift = UInt64(8 * j)
                    for v in 0..<count { plane[v] = UInt8(truncatingIfNeeded: residuals[v] >> shift) }
                }
                dataSize += bytes
                directory.append(UInt8(kind))
                directory.append(UInt8(field))
                directory.append(mode)
                directory.append(UInt8(width))
                withUnsafeBytes(of: UInt32(count).littleEndian) { directory.append(contentsOf: $0) }
                streamCount += 1
            }
        }

        // Assemble: header, kinds, directory, stream data.
        let out = payload.baseAddress!
        out.storeBytes(of: UInt32(n).littleEndian, toByteOffset: 0, as: UInt32.self)
        out.storeBytes(of: UInt16(streamCount).littleEndian, toByteOffset: 4, as: UInt16.self)
        out.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)
        var at = CompactLayout.headerSize
        at += n  // the kind bytes, written while grouping
        directory.withUnsafeBytes { (out + at).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        at += directory.count
        (out + at).copyMemory(from: data.baseAddress!, byteCount: dataSize)
        at += dataSize
        return UnsafeRawBufferPointer(start: out, count: at)
    }

    /// The value `field` has in every record of kind range `start..<end` that codes it, or nil when they differ.
    private func constantValue(field: Int, start: Int, end: Int, bit: UInt16) -> UInt64? {
        var first: UInt64?
        let access = CompactFieldAccess(field)
        let (sorted, mask) = (self.sorted, self.mask)
        for o in start..<end where mask[o] & bit != 0 {
            let v = access.value(sorted + o &* Self.sortedStride)
            if let f = first {
                if f != v { return nil }
            } else {
                first = v
            }
        }
        return first
    }

    /// The residual of a stream's field (not a table value) for the record at `p` in ``sorted`` under `mode`;
    /// `first`: `p` is the first record of its kind, which has no predecessor of its kind.
    @inline(__always)
    private static func residual(_ a: CompactFieldAccess, mode: UInt8, record p: UnsafeRawPointer, first: Bool)
        -> UInt64
    {
        let v = a.value(p)
        switch mode {
        case CompactLayout.Mode.raw:
            return v
        case CompactLayout.Mode.delta:
            let pred: UInt64
            if let o = a.predecessorOffset {
                pred = a.value(p, at: o)
            } else {
                pred = first ? 0 : a.value(p - sortedStride)
            }
            return CompactLayout.zigzag(v &- pred)
        case CompactLayout.Mode.fromSize:
            return CompactLayout.zigzag(v &- CompactFieldAccess.size.value(p))
        default:
            return CompactLayout.zigzag(v &- CompactFieldAccess.address.value(p))
        }
    }

    /// The mode whose residuals have the smallest estimated size over a sample of the stream (ties: lower mode).
    private func chooseMode(field: Int, start: Int, end: Int, count: Int) -> UInt8 {
        typealias F = CompactLayout.Field
        if F.isTableValue(field) { return CompactLayout.Mode.raw }
        let modes: UInt8 = field == F.address2 || field == F.aux || field == F.aux2 ? 4 : 2
        let histogram = self.histogram
        histogram.update(repeating: 0, count: 4 * 8 * 256)
        let stride = max(1, count / Self.samples)
        var taken = 0
        // Every stride-th value; counted down, as a division per value was 80 % of this function's cycles.
        var untilNext = stride
        let bit = UInt16(1) << UInt16(field)
        let (sorted, mask) = (self.sorted, self.mask)
        let access = CompactFieldAccess(field)
        for o in start..<end where mask[o] & bit != 0 {
            untilNext -= 1
            guard untilNext == 0 else { continue }
            untilNext = stride
            taken += 1
            for m in 0..<modes {
                var r = Self.residual(access, mode: m, record: sorted + o &* Self.sortedStride, first: o == start)
                var j = 0
                let h = histogram + Int(m) * 8 * 256
                while r != 0 {
                    h[j * 256 + Int(r & 0xFF)] += 1
                    r >>= 8
                    j += 1
                }
                // Planes above the value's top byte hold zeros.
                while j < 8 {
                    h[j * 256] += 1
                    j += 1
                }
            }
        }
        var best: UInt8 = 0
        var bestCost = Double.infinity
        let t = Double(taken)
        for m in 0..<modes {
            var cost = 0.0
            let h = histogram + Int(m) * 8 * 256
            for j in 0..<8 {
                let plane = h + j * 256
                if plane[0] == UInt32(taken) { continue }
                for b in 0..<256 where plane[b] > 0 {
                    let c = Double(plane[b])
                    cost -= c * Platform.binaryLogarithm(c / t)
                }
                cost += 8  // a plane that is not all zeros costs at least its table
            }
            if cost < bestCost - 1e-9 {
                bestCost = cost
                best = m
            }
        }
        return best
    }
}

/// Where a compact-layout field lives in the 56-byte record (`schemas/dmat-format.md` §9a): its value is
/// `(the 8 bytes at offset, little-endian) >> shift & mask`, one load with no switch per value.
struct CompactFieldAccess {
    let offset: Int
    let shift: UInt64
    let mask: UInt64
    /// Where the encoder's sorted copy of a record keeps the value that delta mode predicts from when that is
    /// the previous record of any kind (timestamp, position, cpu; ``CompactChunkEncoder``), nil when it is the
    /// previous record of the same kind.
    let predecessorOffset: Int?

    static let size = CompactFieldAccess(CompactLayout.Field.size)
    static let address = CompactFieldAccess(CompactLayout.Field.address)

    /// A record field (not ``CompactLayout/Field/ref`` or ``CompactLayout/Field/reuse``, which are table values).
    init(_ field: Int) {
        typealias F = CompactLayout.Field
        let (offset, width): (Int, Int) =
            switch field {
            case F.flags: (1, 1)
            case F.detail: (2, 1)
            case F.clock: (3, 1)
            case F.device: (4, 2)
            case F.source: (6, 2)
            case F.timestamp: (8, 8)
            case F.address: (16, 8)
            case F.address2: (24, 8)
            case F.size: (32, 8)
            case F.aux: (40, 4)
            case F.aux2: (44, 4)
            case F.position: (48, 6)
            case F.cpu: (54, 2)
            default: preconditionFailure("field \(field) is a table value, not a record field")
            }
        // The 8-byte load stays inside the record: bytes 54-55 are read from 48.
        self.offset = min(offset, Event.recordSize - 8)
        shift = UInt64(8 * (offset - self.offset))
        mask = width == 8 ? .max : (1 << UInt64(8 * width)) - 1
        predecessorOffset =
            switch field {
            case F.timestamp: Event.recordSize
            case F.position, F.cpu: Event.recordSize + 8
            default: nil
            }
    }

    @inline(__always) func value(_ p: UnsafeRawPointer) -> UInt64 { value(p, at: offset) }

    /// The field's value in the 8 bytes at `offset` (the record's or a copy of them).
    @inline(__always) func value(_ p: UnsafeRawPointer, at offset: Int) -> UInt64 {
        (UInt64(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) >> shift) & mask
    }
}
