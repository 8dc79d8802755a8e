import Foundation
import PropertyBased
import Testing
@testable import TraceFormat

extension Fixtures {
    /// A DMA-like trace: maps, unmaps (FIFO, LIFO and random order), syncs, allocs/frees, IOMMU maps/unmaps
    /// with IOVA reuse, on three devices, mixed with random events of every kind and records of unknown kinds.
    /// With `cpus` most events record a CPU (format 3.0's cpu streams).
    static func mappingRecords(seed: UInt64, count: Int, cpus: Bool = false) -> [Event] {
        var rng = SplitMix64(seed: seed)
        var ts = rng.next() % 1_000_000_000
        var pos: UInt64 = 1
        var live: [(kind: EventKind, dev: UInt16, addr: UInt64, size: UInt64)] = []
        var free: [UInt64: [UInt64]] = [:]
        var top: UInt64 = 0x1_0000_0000
        var out: [Event] = []
        let sizes: [UInt64] = [4096, 4096, 8192, 65536, 1500, 0]
        while out.count < count {
            ts &+= [0, 1000, 2000, 70_000, 1 << 40][Int(rng.next() % 5)] &+ rng.next() % 900
            pos &+= rng.next() % 50 == 0 ? 9000 : 1
            let dev = UInt16([0, 1, 2, 0xFFFF][Int(rng.next() % 4)])
            let r = rng.next() % 100
            var e: Event
            if r < 30 || live.isEmpty {
                let kind: EventKind = [.dmaMap, .dmaAlloc, .iommuMap][Int(rng.next() % 3)]
                let size = sizes[Int(rng.next() % UInt64(sizes.count))]
                let addr: UInt64
                if let a = free[size]?.popLast() {
                    addr = a
                } else {
                    top &-= max(size, 4096)
                    addr = top
                }
                e = Event(
                    kind: kind, timestamp: ts, device: dev, direction: .toDevice, address: addr,
                    address2: (rng.next() % 0x40000) << 12, size: size, position: pos)
                live.append((kind, dev, addr, size))
            } else if r < 65 {
                let j = [0, 0, 0, live.count - 1, Int(rng.next() % UInt64(live.count))][Int(rng.next() % 5)]
                let m = live.remove(at: j)
                let kind: EventKind = m.kind == .dmaMap ? .dmaUnmap : m.kind == .dmaAlloc ? .dmaFree : .iommuUnmap
                e = Event(
                    kind: kind, timestamp: ts, device: m.dev, direction: .toDevice, address: m.addr,
                    address2: kind == .iommuUnmap ? m.size : 0, size: m.size, position: pos)
                free[m.size, default: []].append(m.addr)
            } else if r < 80 {
                let m = live[Int(rng.next() % UInt64(live.count))]
                e = Event(
                    kind: .dmaSync, timestamp: ts, device: m.dev, direction: .fromDevice,
                    detail: UInt8(rng.next() % 2), address: m.addr, size: rng.next() % 4 == 0 ? 64 : m.size,
                    position: pos)
            } else if r < 83 {
                // A release of something never mapped in this chunk.
                e = Event(
                    kind: [.dmaUnmap, .dmaFree, .iommuUnmap, .dmaSync][Int(rng.next() % 4)], timestamp: ts,
                    device: dev, address: rng.next(), size: rng.next() % 100_000, position: pos)
            } else if r < 98 {
                let kind = EventKind.allCases[Int(rng.next() % UInt64(EventKind.allCases.count))]
                e = Event(
                    kind: kind, timestamp: ts, device: dev, address: rng.next(),
                    address2: rng.next() % 3 == 0 ? 0 : rng.next(),
                    size: rng.next() % 65536, aux: UInt32(truncatingIfNeeded: rng.next()),
                    aux2: UInt32(truncatingIfNeeded: rng.next() % 100), clock: UInt8(rng.next() % 2), source: 0,
                    position: pos)
                e.flags = UInt8(truncatingIfNeeded: rng.next())
                e.detail = UInt8(truncatingIfNeeded: rng.next())
            } else {
                e = Event(
                    kind: .marker, timestamp: ts, address: UInt64.max, address2: rng.next(), size: UInt64.max,
                    aux: .max, aux2: .max, clock: .max, source: .max, position: .max)
                e.flags = .max
                e.detail = .max
                e.device = .max
            }
            if cpus && rng.next() % 4 != 0 { e.cpu = UInt16(rng.next() % 4) }
            out.append(e)
        }
        return out
    }

    /// Records as 56-byte rows; `unknownEvery` > 0 turns every n-th record into an unknown kind (200 + n % 50).
    static func rows(_ events: [Event], unknownEvery: Int = 0) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(events.count * 56)
        for (i, e) in events.enumerated() {
            var r = e.recordBytes
            if unknownEvery > 0 && i % unknownEvery == unknownEvery - 1 { r[0] = UInt8(200 + i % 50) }
            bytes += r
        }
        return bytes
    }
}

/// The compact chunk layout: encoder and decoder are inverse on any records, and damage never traps.
@Suite struct CompactLayoutTests {
    /// Encodes then decodes; returns the decoded rows (nil when the encoder fell back to rows).
    static func roundTrip(_ rows: [UInt8], anySize: Bool = false) throws -> (payload: [UInt8], decoded: [UInt8])? {
        let enc = CompactChunkEncoder()
        let payload = withExtendedLifetime(enc) {
            rows.withUnsafeBytes { enc.encode($0, anySize: anySize).map { [UInt8]($0) } }
        }
        guard let payload else { return nil }
        let decoded = try decode(payload, events: rows.count / 56)
        return (payload, decoded)
    }

    static func decode(_ payload: [UInt8], events: Int) throws -> [UInt8] {
        let dec = CompactChunkDecoder()
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: max(events * 56, 1), alignment: 16)
        defer { out.deallocate() }
        try payload.withUnsafeBytes { try dec.decode($0, eventCount: events, into: out) }
        return [UInt8](UnsafeRawBufferPointer(rebasing: out[..<(events * 56)]))
    }

    @Test func randomRecordsRoundTrip() async throws {
        await propertyCheck(count: 40, input: Gen.uint64(), Gen.int(in: 1...3000), Gen.int(in: 0...7)) {
            seed, n, unknown in
            let rows = Fixtures.rows(
                Fixtures.mappingRecords(seed: seed, count: n, cpus: seed % 2 == 1), unknownEvery: unknown)
            let r = try #require(try Self.roundTrip(rows, anySize: true))
            #expect(r.decoded == rows)
        }
    }

    @Test func arbitraryBytesRoundTrip() async throws {
        // Any 56-byte rows, not only well-formed events: the layout is lossless on raw records.
        await propertyCheck(count: 30, input: Gen.uint64(), Gen.int(in: 1...400)) { seed, n in
            var rng = SplitMix64(seed: seed)
            var rows = [UInt8](repeating: 0, count: n * 56)
            for i in rows.indices { rows[i] = UInt8(truncatingIfNeeded: rng.next() >> (rng.next() % 2 == 0 ? 0 : 60)) }
            for i in 0..<n where rng.next() % 2 == 0 { rows[i * 56] = [1, 2, 3, 4, 5, 16, 17][Int(rng.next() % 7)] }
            let r = try #require(try Self.roundTrip(rows, anySize: true))
            #expect(r.decoded == rows)
        }
    }

    @Test func mappingTraceIsReferencedAndSmall() throws {
        let events = Fixtures.mappingRecords(seed: 7, count: 20_000)
        let rows = Fixtures.rows(events)
        let r = try #require(try Self.roundTrip(rows))
        #expect(r.decoded == rows)
        // The directory names a ref stream for dma_unmap (kind 2) and a reuse stream for iommu_map (16).
        let streams = Int(UInt16(r.payload[4]) | UInt16(r.payload[5]) << 8)
        var keys: [(UInt8, UInt8)] = []
        for s in 0..<streams {
            let at = 8 + events.count + s * 8
            keys.append((r.payload[at], r.payload[at + 1]))
        }
        #expect(keys.contains { $0 == (2, 12) })
        #expect(keys.contains { $0 == (16, 13) })
        // 15 % of the records are random 64-bit noise, so the payload is only ~0.6x the rows before zstd.
        #expect(r.payload.count < rows.count * 7 / 10)
    }

    /// Format 3.0's cpu streams: only kinds whose records carry a CPU get one (here dma_map, not the markers),
    /// and it must hold one value per record of its kind. Twin: a cpu stream one value short is damage (a
    /// constant stream: its data does not depend on the count, so only the count check can catch it).
    @Test func cpuStreamsAreCheckedPerKind() throws {
        var events: [Event] = []
        for i in 0..<50 {
            let t = UInt64(i)
            if i % 2 == 0 {
                events.append(Event(kind: .dmaMap, timestamp: t, address: t << 12, size: 4096, cpu: 2))
            } else {
                events.append(Event(kind: .marker, timestamp: t, position: t))
            }
        }
        let rows = Fixtures.rows(events)
        let r = try #require(try Self.roundTrip(rows, anySize: true))
        #expect(r.decoded == rows)
        let streams = Int(r.payload[4]) | Int(r.payload[5]) << 8
        var keys: [(kind: UInt8, field: UInt8)] = []
        for j in 0..<streams { keys.append((r.payload[58 + j * 8], r.payload[58 + j * 8 + 1])) }
        #expect(keys.contains { $0.kind == 1 && $0.field == 14 })
        #expect(!keys.contains { $0.kind == EventKind.marker.rawValue && $0.field == 14 })
        var damaged = r.payload
        let s: Int = try #require(keys.firstIndex { $0.kind == 1 && $0.field == 14 })
        damaged[58 + s * 8 + 4] -= 1  // its count: 24 values for 25 dma_map records
        #expect(throws: CompactChunkError(message: "stream (kind 1, cpu) holds 24 values for 25 records")) {
            _ = try Self.decode(damaged, events: 50)
        }
    }

    @Test func edgeCases() throws {
        // One event; extreme values; deltas that wrap around 2^64.
        let one = Event(kind: .dmaMap, timestamp: .max, device: 3, address: .max, size: .max, aux: .max, position: .max)
        #expect(try Self.roundTrip(one.recordBytes) == nil)  // larger than its 56-byte row: the writer keeps rows
        #expect(try Self.roundTrip(one.recordBytes, anySize: true)?.decoded == one.recordBytes)
        let wrap = [
            Event(kind: .iommuMap, timestamp: .max, address: .max, size: 1, position: .max),
            Event(kind: .iommuMap, timestamp: 0, address: 0, size: .max, position: 0),
            Event(kind: .iommuUnmap, timestamp: .max, address: 0, address2: 0, size: .max, position: 1 << 63),
            Event(kind: .iommuMap, timestamp: 1 << 63, address: 0, size: .max),
            Event(kind: .iommuUnmap, timestamp: 1, address: .max, address2: 7, size: 1)
        ]
        let rows = Fixtures.rows(wrap)
        let r = try #require(try Self.roundTrip(rows, anySize: true))
        #expect(r.decoded == rows)
        // The empty chunk is never written (the encoder refuses it), and an empty payload is damage.
        let enc = CompactChunkEncoder()
        #expect([UInt8]().withUnsafeBytes { enc.encode($0) } == nil)
        #expect(throws: CompactChunkError.self) { _ = try Self.decode([], events: 0) }
        // A well-formed zero-event payload (header only) decodes to nothing.
        #expect(try Self.decode([0, 0, 0, 0, 0, 0, 0, 0], events: 0).isEmpty)
    }

    @Test func liveTableOverflowDropsTheOldest() throws {
        // 5000 maps then unmaps of all in FIFO order: the first 904 fell out of the 4096-entry table and are coded
        // explicitly, the rest by reference; both decode the same.
        var events: [Event] = []
        for i in 0..<5000 {
            events.append(Event(kind: .dmaMap, timestamp: UInt64(i), address: UInt64(i) << 12, size: 4096))
        }
        for i in 0..<5000 {
            events.append(Event(kind: .dmaUnmap, timestamp: UInt64(5000 + i), address: UInt64(i) << 12, size: 4096))
        }
        let rows = Fixtures.rows(events)
        let r = try #require(try Self.roundTrip(rows))
        #expect(r.decoded == rows)
    }

    /// Encodes `rows` with the given search (`anySize`).
    static func encode(_ rows: [UInt8], search: CompactLiveSearch, filterReleased: Bool = true) -> [UInt8]? {
        let enc = CompactChunkEncoder(search: search, filterReleased: filterReleased)
        return withExtendedLifetime(enc) { rows.withUnsafeBytes { enc.encode($0, anySize: true).map { [UInt8]($0) } } }
    }

    /// Many live mappings that are released out of order, long after newer ones, and many releases of mappings
    /// never opened in the chunk: full tables (the oldest dropped), matches deep in the table, misses.
    static func crowdedRecords(seed: UInt64, count: Int) -> [Event] {
        var rng = SplitMix64(seed: seed)
        var live: [(kind: EventKind, addr: UInt64)] = []
        var out: [Event] = []
        var next: UInt64 = 1
        while out.count < count {
            let r = rng.next() % 10
            if r < 6 || live.isEmpty {
                let kind: EventKind = [.dmaMap, .dmaMap, .dmaMap, .iommuMap, .dmaAlloc][Int(rng.next() % 5)]
                live.append((kind, next << 12))
                out.append(Event(kind: kind, timestamp: UInt64(out.count), address: next << 12, size: 4096))
                next += 1 + rng.next() % 3
            } else if r < 8 {
                let j = Int(rng.next() % UInt64(live.count))  // net growth: the dma_map table fills
                let m = live.remove(at: j)
                let kind: EventKind = m.kind == .dmaMap ? .dmaUnmap : m.kind == .dmaAlloc ? .dmaFree : .iommuUnmap
                out.append(Event(kind: kind, timestamp: UInt64(out.count), address: m.addr, size: 4096))
            } else {
                let kind: EventKind = [.dmaUnmap, .iommuUnmap, .dmaSync][Int(rng.next() % 3)]
                out.append(Event(kind: kind, timestamp: UInt64(out.count), address: rng.next() << 12, size: 4096))
            }
        }
        return out
    }

    /// The indexed search with the released filter (the encoder's defaults) writes the bytes of the format's
    /// full scans, on random traces (which reuse released addresses) and on crowded ones that fill the
    /// 4,096-entry tables. Twin: a search that finds nothing writes other bytes on the same inputs, so the
    /// comparison catches an index that wrongly says "not live".
    @Test func indexedSearchWritesTheBytesOfTheScan() async throws {
        await propertyCheck(count: 6, input: Gen.uint64(), Gen.int(in: 1...8000)) { seed, n in
            let random = Fixtures.rows(Fixtures.mappingRecords(seed: seed, count: n))
            #expect(
                Self.encode(random, search: .indexed)
                    == Self.encode(random, search: .scan, filterReleased: false))
            let crowded = Fixtures.rows(Self.crowdedRecords(seed: seed, count: 20_000))
            let scan = try #require(Self.encode(crowded, search: .scan, filterReleased: false))
            #expect(Self.encode(crowded, search: .indexed) == scan)
            #expect(Self.encode(crowded, search: .none) != scan)
        }
    }

    /// The live table against an array: opening (dropping the oldest when full), removing at any index (either
    /// side of it moves), and the search's index. Twin: the same comparison against an array that removes the
    /// wrong entry, or searches from the front only, reports a difference.
    @Test func liveTableMatchesAnArray() throws {
        for (wrongRemoval, frontOnly) in [(false, false), (true, false), (false, true)] {
            var rng = SplitMix64(seed: 5)
            var tables = CompactTables()
            defer { tables.deallocate() }
            var model: [CompactMapping] = []
            var differences = 0
            var paths = (drops: 0, olderSide: 0, newerSide: 0, deep: 0, misses: 0)
            for _ in 0..<15_000 {
                let m = CompactMapping(device: UInt16(rng.next() % 2), address: (rng.next() % 6000) << 12, size: 4096)
                if rng.next() % 3 != 0 {
                    tables.open(1, m)
                    if model.count == CompactLayout.liveCapacity {
                        model.removeFirst()
                        paths.drops += 1
                    }
                    model.append(m)
                } else if let j = tables.findLive(1, m) {
                    let front = model.prefix(64).firstIndex(of: m)
                    let expected = front ?? (frontOnly ? model.firstIndex(of: m) : model.lastIndex(of: m))
                    if j != expected { differences += 1 }
                    if front == nil { paths.deep += 1 }
                    if j < model.count - 1 - j { paths.olderSide += 1 } else { paths.newerSide += 1 }
                    tables.removeLive(1, j)
                    model.remove(at: wrongRemoval && j + 1 < model.count ? j + 1 : j)
                } else if model.contains(m) {
                    differences += 1
                } else {
                    paths.misses += 1
                }
            }
            if tables.liveCount(1) != model.count
                || (0..<model.count).contains(where: { tables.live(1, $0) != model[$0] })
            {
                differences += 1
            }
            #expect(
                (differences == 0) == (!wrongRemoval && !frontOnly),
                "wrongRemoval \(wrongRemoval), frontOnly \(frontOnly)")
        }
    }

    /// The live index against arrays, over three families that share hash buckets, two chunks (the second
    /// after a reset) and a small sequence capacity (renumbered every few thousand opens): opening (dropping
    /// the oldest when full), the index the format's search would return for a release (the encoder), the
    /// mapping at an index near either end or deep inside (the decoder), and removal. Twins: arrays that remove
    /// the wrong entry, search from the front only, or are not cleared between chunks report a difference.
    @Test func liveIndexMatchesArrays() throws {
        let twins = [(false, false, false), (true, false, false), (false, true, false), (false, false, true)]
        for (wrongRemoval, frontOnly, keepAcrossReset) in twins {
            var rng = SplitMix64(seed: 9)
            var index = CompactLiveIndex(chained: true, sequenceCapacity: CompactLayout.liveCapacity + 256)
            var models: [[CompactMapping]] = [[], [], []]
            var differences = 0
            var paths = (drops: 0, deep: 0, front: 0, misses: 0, oldEnd: 0, newEnd: 0, inside: 0)
            for _ in 0..<2 {
                index.reset()
                if !keepAcrossReset { models = [[], [], []] }
                for _ in 0..<16_000 {
                    let r = rng.next() % 8  // family 1 fills its table; 0 and 2 share its buckets
                    let f = r < 6 ? 1 : Int(r - 6) * 2
                    let m = CompactMapping(
                        device: UInt16(rng.next() % 2), address: (rng.next() % 3000) << 12, size: 4096)
                    let op = rng.next() % 6
                    if op < 4 {
                        index.open(f, m)
                        if models[f].count == CompactLayout.liveCapacity {
                            models[f].removeFirst()
                            paths.drops += 1
                        }
                        models[f].append(m)
                    } else if op == 5, !models[f].isEmpty, index.liveCount(f) == models[f].count {
                        // The decoder: a release by index, near the oldest, near the newest, or anywhere.
                        let n = models[f].count
                        let j =
                            [Int(rng.next() % 40), n - 1 - Int(rng.next() % 40), Int(rng.next() % UInt64(n))][
                                Int(rng.next() % 3)]
                        let jj = min(max(j, 0), n - 1)
                        let id = index.select(f, jj)
                        if index.mapping(id) != models[f][jj] { differences += 1 }
                        if jj < 32 {
                            paths.oldEnd += 1
                        } else if n - 1 - jj < 32 {
                            paths.newEnd += 1
                        } else {
                            paths.inside += 1
                        }
                        index.remove(f, id: id)
                        models[f].remove(at: wrongRemoval && jj + 1 < n ? jj + 1 : jj)
                    } else if let (j, id) = index.find(f, m) {
                        let front = models[f].prefix(64).firstIndex(of: m)
                        let expected = front ?? (frontOnly ? models[f].firstIndex(of: m) : models[f].lastIndex(of: m))
                        if j != expected { differences += 1 }
                        if front == nil { paths.deep += 1 } else { paths.front += 1 }
                        index.remove(f, id: id)
                        models[f].remove(at: wrongRemoval && j + 1 < models[f].count ? j + 1 : j)
                    } else if models[f].contains(m) {
                        differences += 1
                    } else {
                        paths.misses += 1
                    }
                }
                for f in 0..<3 where index.liveCount(f) != models[f].count { differences += 1 }
            }
            #expect(
                (differences == 0) == (!wrongRemoval && !frontOnly && !keepAcrossReset),
                "wrongRemoval \(wrongRemoval), frontOnly \(frontOnly), keepAcrossReset \(keepAcrossReset)")
            #expect(
                paths.drops > 0 && paths.deep > 0 && paths.front > 0 && paths.misses > 0 && paths.oldEnd > 0
                    && paths.newEnd > 0 && paths.inside > 0, "\(paths)")
        }
    }

    /// Bit flips and truncation inside a payload: a clean error or (rarely) other records, never a trap.
    @Test func damagedPayloadsThrowOrDecodeWithoutTrapping() throws {
        let rows = Fixtures.rows(Fixtures.mappingRecords(seed: 99, count: 600))
        let r = try #require(try Self.roundTrip(rows))
        let n = rows.count / 56
        var errors = 0
        for seed in UInt64(0)..<400 {
            var rng = SplitMix64(seed: seed)
            var p = r.payload
            switch rng.next() % 3 {
            case 0: p[Int(rng.next() % UInt64(p.count))] ^= UInt8(1 << (rng.next() % 8))
            case 1: p.removeLast(Int(rng.next() % UInt64(p.count)) + 1)
            default:
                for _ in 0..<8 { p[Int(rng.next() % UInt64(p.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            }
            do {
                _ = try Self.decode(p, events: n)
            } catch let error as CompactChunkError {
                errors += 1
                #expect(error.description.hasPrefix("compact chunk: "))
            }
        }
        #expect(errors > 200)
    }

    @Test func specificDamageIsNamed() throws {
        let rows = Fixtures.rows(Fixtures.mappingRecords(seed: 5, count: 100))
        let r = try #require(try Self.roundTrip(rows))
        var p = r.payload
        p[0] = 99
        #expect(throws: CompactChunkError(message: "payload declares 99 records, the chunk header 100")) {
            _ = try Self.decode(p, events: 100)
        }
        p = r.payload
        p.removeLast()
        #expect(throws: CompactChunkError.self) { _ = try Self.decode(p, events: 100) }
        p = r.payload + [0]
        #expect(
            throws: CompactChunkError(
                message: "streams end at byte \(r.payload.count) but the payload has \(r.payload.count + 1) bytes")
        ) {
            _ = try Self.decode(p, events: 100)
        }
        // A reference past the live mappings: one map, then an unmap that refers to live mapping 2.
        let two = Fixtures.rows([
            Event(kind: .dmaMap, address: 0x1000, size: 4096), Event(kind: .dmaUnmap, address: 0x1000, size: 4096)
        ])
        var q = try #require(try Self.roundTrip(two, anySize: true)).payload
        let streams = Int(q[4])
        for s in 0..<streams where q[8 + 2 + s * 8] == 2 && q[8 + 2 + s * 8 + 1] == 12 {
            // The ref stream's single value is its only data byte; find it from the directory order.
            var at = 8 + 2 + streams * 8
            for t in 0..<s { at += Int(q[8 + 2 + t * 8 + 3]) * Int(q[8 + 2 + t * 8 + 4]) }
            #expect(q[at] == 1)
            q[at] = 2
        }
        #expect(throws: CompactChunkError(message: "record 1 (kind 2) refers to live mapping 2 of 1")) {
            _ = try Self.decode(q, events: 2)
        }
    }

    /// `count` DMA-like records written in the compact layout, 100 per chunk, to `c.dmat` in `dir`.
    static func compactFile(in dir: URL, seed: UInt64, count: Int) throws -> (path: String, buffer: EventBuffer) {
        let path = dir.appendingPathComponent("c.dmat").path
        var buf = EventBuffer()
        for e in Fixtures.mappingRecords(seed: seed, count: count) { buf.append(e) }
        try Fixtures.write(buf, to: path, chunkEvents: 100, layout: .compact)
        return (path, buf)
    }

    /// A damaged compact chunk in a file is named and skipped; the chunks around it still read.
    @Test func damagedCompactChunkInAFileIsSkipped() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (path, buf) = try Self.compactFile(in: dir, seed: 3, count: 400)
        let reader = try TraceReader(path: path)
        #expect(reader.header.major == 2)
        #expect(reader.chunks.map(\.header.layout) == [.compact, .compact, .compact, .compact])
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let c = reader.chunks[1]
        bytes[Int(c.frameOffset) + Int(c.header.compressedSize) / 2] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let (back, r2) = try Fixtures.read(path)
        #expect(back.events == Array(buf.events[0..<100] + buf.events[200...]))
        #expect(r2.damage.count == 1)
        #expect(r2.damage.first?.chunk == 1)
        #expect(r2.damage.first?.lostEvents == 100)
    }

    /// File-level mutations of a compact trace (bit flips, deletions, insertions, magics) never trap; an
    /// undamaged read gives the original events. A killed writer's file reads up to its last chunk.
    @Test func compactFileMutationsAndKilledWriter() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (path, buf) = try Self.compactFile(in: dir, seed: 11, count: 600)
        let chunks = try TraceReader(path: path).chunks
        #expect(chunks.count == 6 && chunks.allSatisfy { $0.header.layout == .compact })
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let start = Int(chunks[0].headerOffset)
        var rng = SplitMix64(seed: 5)
        var damaged = 0
        let mutant = dir.appendingPathComponent("mutant.dmat").path
        for round in 0..<150 {
            var m = bytes
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let at = start + Int(rng.next() % UInt64(m.count - start))
                switch rng.next() % 3 {
                case 0: m[at] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
                case 1: m.remove(at: at)
                default: m.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                }
            }
            if try Fixtures.readMutant(m, at: mutant, round: round, expected: buf) { damaged += 1 }
        }
        #expect(damaged > 120)

        // Killed writer: two chunks written, the rest pending; the temporary file reads those two chunks.
        let live = dir.appendingPathComponent("live.dmat").path
        let w = try TraceWriter(path: live, options: .init(chunkEvents: 100, layout: .compact))
        for e in buf.events.prefix(250) { try w.append(e) }
        try w.waitUntilWritten()  // full chunks are encoded and written in the background
        let (back, reader) = try Fixtures.read(try #require(w.temporaryPath))
        #expect(back.events == Array(buf.events.prefix(200)))
        #expect(reader.damage.map(\.kind) == [.missingIndex])
        #expect(reader.header.major == 2)
    }

    /// A chunk whose header names a layout this reader does not know is reported and skipped.
    @Test func unknownLayoutIsReported() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("u.dmat").path
        var buf = EventBuffer()
        for i in 0..<8 { buf.append(Event(kind: .marker, timestamp: UInt64(i))) }
        try Fixtures.write(buf, to: path, chunkEvents: 4, layout: .rows)
        let reader = try TraceReader(path: path)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        // Set chunk 0's flags to layout 9 and fix the CHNK frame's CRC.
        let h = Int(reader.chunks[0].headerOffset)
        bytes[h + 16 + 44] = 9
        let crc = bytes[(h + 8)..<(h + 12)].withUnsafeBytes { tag in
            bytes[(h + 16)..<(h + 64)].withUnsafeBytes { body in
                var c = CRC32()
                c.update(tag)
                c.update(body)
                return c.value
            }
        }
        withUnsafeBytes(of: crc.littleEndian) { for k in 0..<4 { bytes[h + 12 + k] = $0[k] } }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let (back, r2) = try Fixtures.read(path)
        #expect(back.events == Array(buf.events[4...]))
        #expect(r2.damage.map(\.kind) == [.corruptChunk])
        #expect(
            r2.damage.first?.message == "the chunk uses layout 9, which this reader does not know (0 rows, 1 compact)")
    }
}
