/// Encodes 56-byte records as a compact-layout chunk payload (`schemas/dmat-format.md` §9a).
///
/// A pure function of the records (nothing carries over between chunks); storage is allocated for the
/// largest chunk seen and reused. Per (kind, field) stream the encoder picks the residual mode with the
/// smallest estimated size (order-0 entropy of each byte plane over a sample), which the format leaves to
/// the writer: any choice decodes to the same records.
final class CompactChunkEncoder {
    private var tables: CompactTables
    private var capacity = 0
    /// Record indexes grouped by kind (counting sort), and each kind's start in it.
    private var order = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    private var kindStart = [Int](repeating: 0, count: 257)
    /// Per kind byte: some record of the chunk carries a CPU.
    private var kindHasCPU = [Bool](repeating: false, count: 256)
    /// Per record: bit f set when field f is coded in a stream.
    private var mask = UnsafeMutablePointer<UInt16>.allocate(capacity: 1)
    /// Per record: the `ref` or `reuse` value.
    private var refs = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
    private var residuals = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
    private var data = UnsafeMutableRawBufferPointer.allocate(byteCount: 1, alignment: 16)
    private var payload = UnsafeMutableRawBufferPointer.allocate(byteCount: 1, alignment: 16)
    private var histogram = UnsafeMutablePointer<UInt32>.allocate(capacity: 4 * 8 * 256)
    private var directory: [UInt8] = []

    /// Values sampled per stream when estimating which mode is smallest.
    static let samples = 2048

    /// - Parameter search: how a release finds its live mapping; the bytes are the same for ``CompactLiveSearch/scan``
    ///   and ``CompactLiveSearch/counted`` (the default, much faster when releases match nothing).
    init(search: CompactLiveSearch = .counted) {
        tables = CompactTables(search: search)
    }

    deinit {
        tables.deallocate()
        histogram.deallocate()
        deallocateRecordBuffers()
    }

    /// The buffers sized by the chunk's record count (``reserve(_:perEvent:)`` replaces them).
    private func deallocateRecordBuffers() {
        order.deallocate()
        mask.deallocate()
        refs.deallocate()
        residuals.deallocate()
        data.deallocate()
        payload.deallocate()
    }

    private func reserve(_ n: Int, perEvent: Int) {
        guard n > capacity || perEvent > bytesPerEvent else { return }
        deallocateRecordBuffers()
        order = .allocate(capacity: n)
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

        // Group record indexes by kind.
        for k in 0..<257 { kindStart[k] = 0 }
        for i in 0..<n { kindStart[Int(kindOf(i)) + 1] += 1 }
        for k in 0..<256 { kindStart[k + 1] += kindStart[k] }
        var fill = kindStart
        for i in 0..<n {
            let k = Int(kindOf(i))
            order[fill[k]] = Int32(i)
            fill[k] += 1
        }

        // Kinds with a record whose CPU is recorded code a cpu stream (format 3.0); the others read none.
        for k in 0..<256 { kindHasCPU[k] = false }
        for i in 0..<n where u16(rec(i), 54) != 0 { kindHasCPU[Int(kindOf(i))] = true }

        // Run the mapping model in record order: which fields each record codes, and its ref/reuse value.
        tables.reset()
        let always: UInt16 =
            1 << F.flags | 1 << F.detail | 1 << F.clock | 1 << F.source | 1 << F.timestamp
            | 1 << F.position | 1 << F.address2 | 1 << F.aux | 1 << F.aux2
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
                if let j = tables.findLive(family, m) {
                    value = UInt32(j + 1)
                    known = true
                    if role == .close { tables.removeLive(family, j) }
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
                tables.open(family, m)
            } else if role == .close {
                tables.release(family, m)
            }
            mask[i] = bits
            refs[i] = value
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
                var count = 0
                for o in start..<end where mask[Int(order[o])] & bit != 0 { count += 1 }
                guard count > 0 else { continue }
                // A field with one value throughout is stored once (mode 4).
                if !F.isTableValue(field),
                    let v = constantValue(field: field, start: start, end: end, bit: bit, rbase: rbase)
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
                let mode = chooseMode(field: field, start: start, end: end, count: count, rbase: rbase)
                // Residuals of the stream, in record order.
                var c = 0
                var maxResidual: UInt64 = 0
                for o in start..<end {
                    let i = Int(order[o])
                    guard mask[i] & bit != 0 else { continue }
                    let r = residual(
                        field: field, mode: mode, index: i, previousOfKind: o > start ? Int(order[o - 1]) : -1,
                        rbase: rbase)
                    residuals[c] = r
                    maxResidual |= r
                    c += 1
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
        for i in 0..<n { out.storeBytes(of: kindOf(i), toByteOffset: at + i, as: UInt8.self) }
        at += n
        directory.withUnsafeBytes { (out + at).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        at += directory.count
        (out + at).copyMemory(from: data.baseAddress!, byteCount: dataSize)
        at += dataSize
        return UnsafeRawBufferPointer(start: out, count: at)
    }

    /// The value `field` has in every record of kind range `start..<end` that codes it, or nil when they differ.
    private func constantValue(field: Int, start: Int, end: Int, bit: UInt16, rbase: UnsafeRawPointer) -> UInt64? {
        var first: UInt64?
        for o in start..<end {
            let i = Int(order[o])
            guard mask[i] & bit != 0 else { continue }
            let v = fieldValue(field, rbase + i &* Event.recordSize)
            if let f = first {
                if f != v { return nil }
            } else {
                first = v
            }
        }
        return first
    }

    /// The value of `field` in record `index`.
    @inline(__always)
    private func fieldValue(_ field: Int, _ p: UnsafeRawPointer) -> UInt64 {
        typealias F = CompactLayout.Field
        switch field {
        case F.flags: return UInt64(p.load(fromByteOffset: 1, as: UInt8.self))
        case F.detail: return UInt64(p.load(fromByteOffset: 2, as: UInt8.self))
        case F.clock: return UInt64(p.load(fromByteOffset: 3, as: UInt8.self))
        case F.device: return UInt64(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt16.self)))
        case F.source: return UInt64(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 6, as: UInt16.self)))
        case F.timestamp: return UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        case F.address: return UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        case F.address2: return UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        case F.size: return UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 32, as: UInt64.self))
        case F.aux: return UInt64(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 40, as: UInt32.self)))
        case F.aux2: return UInt64(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 44, as: UInt32.self)))
        case F.cpu: return UInt64(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 54, as: UInt16.self)))
        default: return UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 48, as: UInt64.self)) & Event.positionMask
        }
    }

    /// The residual of `field` of record `index` under `mode`.
    @inline(__always)
    private func residual(field: Int, mode: UInt8, index i: Int, previousOfKind: Int, rbase: UnsafeRawPointer) -> UInt64
    {
        typealias F = CompactLayout.Field
        if field == F.ref || field == F.reuse { return UInt64(refs[i]) }
        let p = rbase + i &* Event.recordSize
        let v = fieldValue(field, p)
        switch mode {
        case CompactLayout.Mode.raw:
            return v
        case CompactLayout.Mode.delta:
            let pred: UInt64
            if field == F.timestamp || field == F.position || field == F.cpu {
                pred = i > 0 ? fieldValue(field, p - Event.recordSize) : 0
            } else {
                pred = previousOfKind >= 0 ? fieldValue(field, rbase + previousOfKind &* Event.recordSize) : 0
            }
            return CompactLayout.zigzag(v &- pred)
        case CompactLayout.Mode.fromSize:
            return CompactLayout.zigzag(v &- fieldValue(F.size, p))
        default:
            return CompactLayout.zigzag(v &- fieldValue(F.address, p))
        }
    }

    /// The mode whose residuals have the smallest estimated size over a sample of the stream (ties: lower mode).
    private func chooseMode(field: Int, start: Int, end: Int, count: Int, rbase: UnsafeRawPointer) -> UInt8 {
        typealias F = CompactLayout.Field
        if F.isTableValue(field) { return CompactLayout.Mode.raw }
        let modes: UInt8 = field == F.address2 || field == F.aux || field == F.aux2 ? 4 : 2
        histogram.update(repeating: 0, count: 4 * 8 * 256)
        let stride = max(1, count / Self.samples)
        var taken = 0
        var seen = 0
        let bit = UInt16(1) << UInt16(field)
        for o in start..<end {
            let i = Int(order[o])
            guard mask[i] & bit != 0 else { continue }
            seen += 1
            guard seen % stride == 0 else { continue }
            taken += 1
            for m in 0..<modes {
                var r = residual(
                    field: field, mode: m, index: i, previousOfKind: o > start ? Int(order[o - 1]) : -1, rbase: rbase)
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
