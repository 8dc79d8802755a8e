import Testing
import TraceFormat
@testable import Replay

/// ``IntentTracker`` on hand-made event streams: which buffer a recorded host translation belongs to and when
/// it happened relative to the buffer's life. A recording ``ScenarioFeed`` receives what every scenario would.
@Suite struct IntentTrackerTests {
    /// What the tracker fed the scenarios.
    struct Feed: ScenarioFeed {
        var maps: [(slot: Int, buffer: Buffer)] = []
        var unmaps: [Int] = []
        var accesses: [Access] = []
        var unmatched: [Access] = []
        mutating func map(slot: Int, buffer: Buffer, index: Int, time: UInt64) { maps.append((slot, buffer)) }
        mutating func unmap(slot: Int, buffer: Buffer, time: UInt64, silently: Bool) { unmaps.append(slot) }
        mutating func access(_ a: Access, generation: UInt32) { accesses.append(a) }
        mutating func unmatched(_ a: Access) { unmatched.append(a) }
    }

    /// One modern virtio-blk device with iommu_platform=on behind intel-iommu, translated and strict: its
    /// DMA-API addresses are IOVAs the host translated.
    static let metadata = TraceMetadata(
        capture: CaptureFacts(
            kernelRelease: "6.1.0-56-amd64", qemuVersion: "7.2.22", machine: "q35", viommu: "intel-iommu",
            guestIOMMU: .translated, flushPolicy: .strict),
        devices: [
            DeviceInfo(
                name: "0000:00:02.0", vendorID: 0x1AF4, deviceID: 0x1042, virtioType: "block", transport: .modern,
                iommuPlatform: true, iommuGroup: 2)
        ])

    /// Replays `events` (map at 1 ms, unmap at 2 ms, skew window 1 ms) and returns what the scenarios got.
    static func feed(_ events: [Event]) -> Feed {
        var tracker = IntentTracker(
            facts: DeviceFacts.build(from: metadata), metadata: metadata,
            options: ReplayOptions(skewToleranceNs: 1_000_000, impliedAccesses: false))
        var feed = Feed()
        for (i, e) in events.enumerated() { tracker.handle(i, e, &feed) }
        tracker.finish(&feed)
        return feed
    }

    static let map = Event(
        kind: .dmaMap, timestamp: 1_000_000, device: 0, direction: .toDevice,
        address: 0xFFFF_F000, address2: 0x0123_4000, size: 4096)
    static let unmap = Event(
        kind: .dmaUnmap, timestamp: 2_000_000, device: 0, direction: .toDevice,
        address: 0xFFFF_F000, size: 4096)
    static func translate(at t: UInt64, gpa: UInt64 = 0x0123_4010) -> Event {
        Event(kind: .hostTranslate, timestamp: t, device: 0, address: 0xFFFF_F010, address2: gpa)
    }

    /// A translation of the buffer's IOVA to its GPA while it is mapped belongs to it: in its lifetime, at
    /// offset 0x10, with the recorded outcome.
    @Test func aTranslationDuringTheMappingBelongsToTheBuffer() throws {
        let f = Self.feed([Self.map, Self.translate(at: 1_500_000), Self.unmap])
        #expect(f.maps.count == 1 && f.unmaps == [f.maps[0].slot])
        let a = try #require(f.accesses.first)
        #expect(f.accesses.count == 1 && f.unmatched.isEmpty)
        #expect(a.slot == f.maps[0].slot && a.kind == .inLifetime && a.offset == 0x10)
        guard case .translated(0x0123_4010) = a.recorded else {
            Issue.record("recorded outcome \(a.recorded)")
            return
        }
    }

    /// Twin: the same translation 8 ms after the unmap (beyond the 1 ms skew window) is a use after unmap, not
    /// an access in the buffer's lifetime.
    @Test func theSameTranslationLongAfterTheUnmapIsAUseAfterUnmap() {
        let f = Self.feed([Self.map, Self.unmap, Self.translate(at: 10_000_000)])
        let all = f.accesses + f.unmatched
        #expect(all.count == 1)
        #expect(all.allSatisfy { $0.kind != .inLifetime })
    }

    /// Twin: within the skew window after the unmap the translation still counts as in the buffer's lifetime
    /// (clock alignment is only that good).
    @Test func aTranslationWithinTheSkewWindowAfterTheUnmapIsStillInLifetime() {
        let f = Self.feed([Self.map, Self.unmap, Self.translate(at: 2_500_000)])
        #expect(f.accesses.map(\.kind) == [.inLifetime])
    }

    /// Twin: a translation of the same IOVA to a GPA on another page is not the buffer's (a stale or foreign
    /// mapping), so it is not delivered as the buffer's access.
    @Test func aTranslationToAnotherPageIsNotTheBuffers() {
        let f = Self.feed([Self.map, Self.translate(at: 1_500_000, gpa: 0x0999_9010), Self.unmap])
        #expect(!f.accesses.contains { $0.kind == .inLifetime && $0.slot == f.maps.first?.slot })
    }

    /// The unmap's fast path (no shadowed or moved buffers: the live buffer is the only candidate) ends the
    /// buffers the table loop ends: random streams of DMA-API maps and unmaps of one to three pages on a few
    /// pages (overlapping, unmapped by an inner address, unmapped twice), with `iommu:map`s that shadow a
    /// buffer now and then, fed to a tracker with and without the fast path; maps, unmaps and accesses agree.
    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func theUnmapFastPathEndsWhatTheTableLoopEnds(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var events: [Event] = []
        var t: UInt64 = 1_000_000
        for _ in 0..<3_000 {
            t += 20_000 + rng.next() % 50_000
            let page = 0xFFF0_0000 + (rng.next() % 24) << 12
            let size = (1 + rng.next() % 3) << 12 - (rng.next() % 2 == 0 ? 0 : 0x800)
            let gpa = 0x0100_0000 + (rng.next() % 64) << 12
            switch rng.next() % 10 {
            case 0...3:
                events.append(
                    Event(
                        kind: .dmaMap, timestamp: t, device: 0, direction: .toDevice, address: page, address2: gpa,
                        size: size))
            case 4:
                events.append(Event(kind: .iommuMap, timestamp: t, device: 0, address: page, address2: gpa, size: size))
            case 5...7:
                let inner = rng.next() % 3 == 0 ? UInt64(0x1000) : 0
                events.append(
                    Event(
                        kind: .dmaUnmap, timestamp: t, device: 0, direction: .toDevice, address: page + inner,
                        size: size))
            case 8:
                events.append(Event(kind: .iommuUnmap, timestamp: t, device: 0, address: page, size: size))
            default:
                events.append(
                    Event(kind: .hostTranslate, timestamp: t, device: 0, address: page + 0x10, address2: gpa + 0x10))
            }
        }
        func run(loopOnly: Bool) -> Feed {
            var tracker = IntentTracker(
                facts: DeviceFacts.build(from: Self.metadata), metadata: Self.metadata,
                options: ReplayOptions(skewToleranceNs: 1_000_000, impliedAccesses: true))
            tracker.tableLoopOnly = loopOnly
            var feed = Feed()
            for (i, e) in events.enumerated() { tracker.handle(i, e, &feed) }
            tracker.finish(&feed)
            return feed
        }
        let fast = run(loopOnly: false), loop = run(loopOnly: true)
        #expect(fast.unmaps.count > 500)
        #expect(fast.unmaps == loop.unmaps, "seed \(seed)")
        #expect(fast.maps.map(\.slot) == loop.maps.map(\.slot), "seed \(seed)")
        #expect(fast.maps.map(\.buffer.generation) == loop.maps.map(\.buffer.generation), "seed \(seed)")
        #expect(
            fast.accesses.map { "\($0.slot)/\($0.kind)/\($0.offset)/\($0.eventIndex)" }
                == loop.accesses.map { "\($0.slot)/\($0.kind)/\($0.offset)/\($0.eventIndex)" }, "seed \(seed)")
    }

    /// ``IntentTracker/firstSeen`` is each device's first DMA-related event, as a scan of the events finds it,
    /// also once the tracker stops looking (``IntentTracker/unseenDevices`` at 0): random streams over three
    /// devices, one of which may never appear, of DMA-related kinds and others (a sync, a guest log line).
    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func firstSeenIsEachDevicesFirstDMAEvent(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var m = Self.metadata
        m.devices += [
            DeviceInfo(
                name: "0000:00:03.0", vendorID: 0x1AF4, deviceID: 0x1041, virtioType: "net", transport: .modern,
                iommuPlatform: true, iommuGroup: 3),
            DeviceInfo(
                name: "0000:00:04.0", vendorID: 0x1AF4, deviceID: 0x1042, virtioType: "block", transport: .modern,
                iommuPlatform: true, iommuGroup: 4)
        ]
        let kinds: [EventKind] = [.dmaSync, .guestLog, .dmaMap, .dmaUnmap, .hostTranslate, .hostAccess, .virtioStatus]
        let devices: UInt64 = seed % 2 == 0 ? 3 : 2
        var events: [Event] = []
        for i in 0..<400 {
            let kind = kinds[Int(rng.next() % UInt64(kinds.count))]
            events.append(
                Event(
                    kind: kind, timestamp: UInt64(i) * 10_000, device: UInt16(rng.next() % devices),
                    direction: .toDevice, address: 0xFFF0_0000 + (rng.next() % 16) << 12, address2: 0x0100_0000,
                    size: 4096))
        }
        var tracker = IntentTracker(
            facts: DeviceFacts.build(from: m), metadata: m,
            options: ReplayOptions(skewToleranceNs: 1_000_000, impliedAccesses: false))
        var feed = Feed()
        for (i, e) in events.enumerated() { tracker.handle(i, e, &feed) }
        for d in 0..<3 {
            let expected = events.indices.first {
                events[$0].device == UInt16(d) && IntentTracker.isDMAEvent(events[$0].kind)
            }
            #expect(tracker.firstSeen[d]?.index == expected, "seed \(seed) device \(d)")
            #expect(tracker.firstSeen[d]?.event == expected.map { events[$0] }, "seed \(seed) device \(d)")
        }
        #expect(tracker.unseenDevices == (devices == 3 ? 0 : 1))
    }

    /// A tracker of ``metadata``'s device with a strict allocator check on `cpus` CPUs (a 48-bit domain).
    static func checkedTracker(cpus: Int) -> IntentTracker {
        var tracker = IntentTracker(
            facts: DeviceFacts.build(from: Self.metadata), metadata: Self.metadata,
            options: ReplayOptions(skewToleranceNs: 1_000_000, impliedAccesses: false))
        tracker.allocatorCheck = AllocatorCheck(
            lazy: false, flushTimeoutMs: 10, flushEntries: 256, addressWidth: 48, below4GFirst: true, cpus: cpus,
            domainOf: [0])
        return tracker
    }

    /// 5.10's intel-iommu dma_ops (`intel_iommu:map_single`) trace the pages they mapped: `dev_addr` keeps the
    /// buffer's offset in its first page and `size` is nrpages << 12, so a 4096-byte map at 0xffffb398 is one
    /// page at 0xffffb000, the next one below the first (0xfffff000, top-down). Twin: the same event as a
    /// generic DMA-API map spans two pages, which the allocator places at 0xffffc000, not 0xffffb000.
    @Test func intelDriverMapsAreCheckedPageAligned() {
        func divergences(_ api: MapAPI) -> Int {
            var tracker = Self.checkedTracker(cpus: 1)
            var feed = Feed()
            let events = [
                Event(
                    kind: .dmaMap, timestamp: 1_000_000, device: 0, direction: .toDevice, detail: api.rawValue,
                    address: 0xFFFF_F000, address2: 0x0123_4000, size: 4096),
                Event(
                    kind: .dmaMap, timestamp: 2_000_000, device: 0, direction: .toDevice, detail: api.rawValue,
                    address: 0xFFFF_E398, address2: 0x0124_5398, size: 4096)
            ]
            for (i, e) in events.enumerated() { tracker.handle(i, e, &feed) }
            tracker.finish(&feed)
            return tracker.allocatorCheck?.divergenceCount ?? -1
        }
        #expect(divergences(.intelSingle) == 0)
        #expect(divergences(.page) == 1)
    }

    /// Format 3.0 records the CPU of a DMA-API event (ftrace's `[cpu]` column), and the allocator check follows
    /// it: CPU 0 maps A and CPU 1 maps B; each unmaps its own buffer into its own CPU's IOVA cache (strict), and
    /// CPU 1's next map gets B back, not A. Twin: the same last map recorded on CPU 0 must be A, so B diverges.
    @Test func dmaAPIMapsFollowTheirRecordedCPU() {
        func divergences(lastMapOn lastCPU: UInt16) -> Int {
            var tracker = Self.checkedTracker(cpus: 2)
            var feed = Feed()
            func map(_ t: UInt64, _ iova: UInt64, cpu: UInt16) -> Event {
                Event(
                    kind: .dmaMap, timestamp: t, device: 0, direction: .toDevice, detail: MapAPI.intelSingle.rawValue,
                    address: iova, address2: 0x0123_4000 + iova & 0xFFFF, size: 4096, cpu: cpu)
            }
            func unmap(_ t: UInt64, _ iova: UInt64, cpu: UInt16) -> Event {
                Event(
                    kind: .dmaUnmap, timestamp: t, device: 0, direction: .toDevice,
                    detail: MapAPI.intelSingle.rawValue, address: iova, size: 4096, cpu: cpu)
            }
            let events = [
                map(1_000_000, 0xFFFF_F000, cpu: 0), map(2_000_000, 0xFFFF_E000, cpu: 1),
                unmap(3_000_000, 0xFFFF_F000, cpu: 0), unmap(4_000_000, 0xFFFF_E000, cpu: 1),
                map(5_000_000, 0xFFFF_E000, cpu: lastCPU)
            ]
            for (i, e) in events.enumerated() { tracker.handle(i, e, &feed) }
            tracker.finish(&feed)
            return tracker.allocatorCheck?.divergenceCount ?? -1
        }
        #expect(divergences(lastMapOn: 1) == 0)
        #expect(divergences(lastMapOn: 0) == 1)
    }
}
