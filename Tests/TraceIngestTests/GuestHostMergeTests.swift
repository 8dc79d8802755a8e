import DMATraceTestSupport
import Testing
import TraceFormat
@testable import TraceIngest

@Suite struct GuestHostMergeTests {
    /// The real Intel capture through the standard importers (guest ftrace and dmesg, the QEMU 7.2 log on
    /// the host), with a caller's fact.
    private func realCapture() throws -> (EventBuffer, IngestReport) {
        let pipeline = IngestPipeline()
        let plan = try pipeline.plan([
            IngestInput.open(Fixtures.path("\(Fixtures.strict)/guest-ftrace-iommu.txt")),
            IngestInput.open(Fixtures.path("\(Fixtures.strict)/guest-dmesg.txt")),
            IngestInput.open(Fixtures.path("\(Fixtures.strict)/qemu-7.2-trace-full.log.zst"))
        ])
        return try pipeline.ingest(plan, meta: ["capture.by": "test"])
    }

    @Test(.tags(.realCapture)) func realCaptureIsAlignedAndAttributed() throws {
        let (buf, report) = try realCapture()
        let a = try #require(report.alignment)
        #expect(a.method == "iova-first-translation")
        let maps = buf.events.filter { $0.kind == .iommuMap }
        #expect(maps.count == 675)
        let attributedMaps = maps.filter(\.hasDevice)
        #expect(attributedMaps.count * 100 >= maps.count * 95)
        #expect(a.unattributedEvents == 1092 - a.attributedEvents)
        #expect(a.attributedEvents >= 1040)
        #expect(a.pairsMatched >= 300)
        #expect(a.residualSkewNs > 0 && a.residualSkewNs < 2_000_000)
        // Devices are the guest's names (from dmesg), found through the host sid.
        let names = Set(attributedMaps.map { buf.metadata.devices[Int($0.device)].name })
        #expect(names == ["0000:00:02.0", "0000:00:03.0"])
        #expect(maps.allSatisfy { $0.eventFlags.contains(.aligned) && $0.clock == 0 })
        #expect(attributedMaps.allSatisfy { $0.eventFlags.contains(.attributed) })
        // The very first map (insmod virtio_blk, guest 3.279753 s) belongs to virtio-blk 0000:00:02.0.
        let first = try #require(maps.min { $0.position < $1.position })
        #expect(buf.metadata.devices[Int(first.device)].name == "0000:00:02.0")
        // Line 44, virtio_net's probe (insmod-100): iova 0xffffd000 → paddr 0x1ff5d000. virtio-blk reuses
        // that IOVA in its own domain, but QEMU translated 0xffffd000 to gpa 0x1ff5d000 for 00:03.0 only.
        let netRing = try #require(maps.first { $0.position == 44 })
        #expect(netRing.address == 0xffffd000 && netRing.address2 == 0x1ff5d000)
        #expect(buf.metadata.devices[Int(netRing.device)].name == "0000:00:03.0")
        // Guest clock offset onto the host wall clock: about 1795570151.99 s.
        let off = try #require(buf.metadata.clocks.first { $0.name == "guest-boot" }?.offsetToReferenceNs)
        #expect(abs(off - 1_795_570_151_992_799_000) < 5_000_000)
        // The two guest DMAR faults land within 10 ms after a host vtd_dmar_fault of the same address.
        let hostFaults = buf.events.filter { $0.kind == .hostFault }
        for f in buf.events where f.kind == .guestFault {
            let before = hostFaults.filter { $0.address == f.address && $0.timestamp <= f.timestamp }
            #expect(before.contains { f.timestamp - $0.timestamp < 10_000_000 })
        }
        // Time order.
        #expect(zip(buf.events, buf.events.dropFirst()).allSatisfy { $0.timestamp <= $1.timestamp })
        #expect(buf.metadata.capture.alignment == a)
        // The caller's facts, plus the guest log lines the boot facts were read from (evidence.*).
        #expect(buf.metadata.extra["capture.by"] == "test")
        #expect(buf.metadata.extra.keys.filter { !$0.hasPrefix("evidence.") } == ["capture.by"])
        #expect(buf.metadata.extra["evidence.viommu"]?.contains("DMAR: IOMMU enabled") == true)
        #expect(report.summary().contains("alignment: iova-first-translation"))
    }

    /// The whole real capture through the standard registry: formats sniffed, QEMU log importer on the host.
    @Test(.tags(.realCapture)) func realCaptureThroughTheStandardImporters() throws {
        let pipeline = IngestPipeline()
        let plan = try pipeline.plan([
            IngestInput.open(Fixtures.path("\(Fixtures.strict)/guest-ftrace-iommu.txt")),
            IngestInput.open(Fixtures.path("\(Fixtures.strict)/qemu-7.2-trace-full.log.zst")),
            IngestInput.open(Fixtures.path("\(Fixtures.strict)/guest-dmesg.txt"))
        ])
        #expect(plan.entries.map(\.formatID) == ["ftrace", "qemu-log", "dmesg"])
        #expect(plan.domains.map(\.name) == ["host-realtime", "guest-boot"])
        #expect(plan.clocks == [1, 0, 1])
        let (buf, report) = try pipeline.ingest(plan)
        let a = try #require(report.alignment)
        let maps = buf.events.filter { $0.kind == .iommuMap }
        #expect(maps.count == 675)
        #expect(maps.filter(\.hasDevice).count * 100 >= maps.count * 95)
        #expect(a.attributedEvents + a.unattributedEvents == 1092)
        #expect(a.residualSkewNs < 2_000_000)
        #expect(report.inputs[1].diagnostics.understood["vtd_dmar_fault"] == 96)
        #expect(report.inputs[1].diagnostics.understood["vtd_dmar_translate"] == 3574)
        #expect(Set(maps.map { buf.metadata.devices[Int($0.device)].name }) == ["0000:00:02.0", "0000:00:03.0"])
        #expect(buf.metadata.inputs.map(\.format) == ["ftrace", "qemu-log", "dmesg"])
        #expect(buf.metadata.capture.flushPolicy == .strict && buf.metadata.capture.guestIOMMU == .translated)
        #expect(zip(buf.events, buf.events.dropFirst()).allSatisfy { $0.timestamp <= $1.timestamp })
    }

    @Test func faultPairsAlignWithoutCommonPages() throws {
        var buf = EventBuffer()
        let dev = buf.device(DeviceInfo(name: "0000:00:05.0", sid: 0x28))
        let host = buf.device(DeviceInfo(name: "sid 0x28", sid: 0x28))
        buf.append(Event(kind: .guestFault, timestamp: 7_304_746_000, device: dev, address: 0x1000000, clock: 1))
        buf.append(Event(kind: .guestFault, timestamp: 8_390_656_000, device: dev, address: 0x2345000, clock: 1))
        for k in 0..<64 as Range<UInt64> {
            buf.append(
                Event(
                    kind: .hostFault, timestamp: 1_000_007_304_000_000 + k * 1000, device: host, address: 0x1000000,
                    clock: 0))
            buf.append(
                Event(
                    kind: .hostFault, timestamp: 1_000_008_390_000_000 + k * 1000, device: host, address: 0x2345000,
                    clock: 0))
        }
        buf.append(Event(kind: .iommuMap, timestamp: 9_000_000_000, address: 0xffff0000, size: 4096, clock: 1))
        let r = GuestHostMerger(guestClocks: [1], hostClock: 0).merge(&buf)
        #expect(r.method == "fault-pair")
        #expect(r.unattributedEvents == 1 && r.attributedEvents == 0)
        let faults = buf.events.filter { $0.kind == .guestFault }
        // Offset = the upper median of the two first-fault differences (−746 µs, −656 µs).
        #expect(faults.map(\.timestamp) == [1_000_007_304_090_000, 1_000_008_390_000_000])
    }

    @Test func adjacencyAttributesBuffersTheDeviceNeverTouched() {
        var buf = EventBuffer()
        let net = buf.device(DeviceInfo(name: "0000:00:03.0", sid: 0x18))
        let hostNet = buf.device(DeviceInfo(name: "00:03.00", sid: 0x18))
        // Guest maps three adjacent pages top-down; the host only touches the first.
        buf.append(Event(kind: .iommuMap, timestamp: 1_000_000, address: 0xfffff000, size: 4096, clock: 1))
        buf.append(Event(kind: .iommuMap, timestamp: 1_010_000, address: 0xffffe000, size: 4096, clock: 1))
        buf.append(Event(kind: .iommuMap, timestamp: 1_020_000, address: 0xffffc000, size: 8192, clock: 1))
        buf.append(Event(kind: .iommuMap, timestamp: 1_030_000, address: 0x80000000, size: 4096, clock: 1))
        buf.append(
            Event(kind: .hostTranslate, timestamp: 5_001_200_000, device: hostNet, address: 0xfffff000, clock: 0))
        buf.append(
            Event(kind: .iommuUnmap, timestamp: 2_000_000, address: 0xffffe000, address2: 4096, size: 4096, clock: 1))
        let r = GuestHostMerger(guestClocks: [1], hostClock: 0).merge(&buf)
        let guest = buf.events.filter { $0.kind == .iommuMap || $0.kind == .iommuUnmap }
        #expect(guest.map(\.device) == [net, net, net, Event.noDevice, net])
        #expect(r.attributedEvents == 4 && r.unattributedEvents == 1)
        #expect(r.pairsMatched == 1 && r.residualSkewNs == 0)
    }

    /// A receive-ring refill (a 6.1 intel-lazy boot's virtio-net `try_fill_recv()`): device-less maps on one CPU a
    /// few microseconds apart, each right below the last. The first is virtio-net's by its own page's translation;
    /// the second is translated only by virtio-blk, in its own domain, to another page (the same IOVA is live in
    /// both domains): one loop of one driver decides it (``AttributionEvidence/sameCPURun``). Twins: the second
    /// map on another CPU, or 1 ms later, is virtio-blk's by that translation.
    static func refill(secondCPU: UInt16, gapNs: UInt64) -> [UInt16] {
        var buf = EventBuffer()
        _ = buf.device(DeviceInfo(name: "0000:00:02.0", sid: 0x10))
        _ = buf.device(DeviceInfo(name: "0000:00:03.0", sid: 0x18))
        let hostBlk = buf.device(DeviceInfo(name: "00:02.00", sid: 0x10))
        let hostNet = buf.device(DeviceInfo(name: "00:03.00", sid: 0x18))
        var m1 = Event(
            kind: .iommuMap, timestamp: 1_000_000, address: 0xfff79000, address2: 0x31b7000, size: 4096, clock: 1)
        m1.cpu = 0
        var m2 = Event(
            kind: .iommuMap, timestamp: 1_000_000 + gapNs, address: 0xfff78000, address2: 0x31b7000, size: 4096,
            clock: 1)
        m2.cpu = secondCPU
        buf.append(m1)
        buf.append(m2)
        buf.append(
            Event(
                kind: .hostTranslate, timestamp: 5_001_200_000, device: hostNet, address: 0xfff79000,
                address2: 0x31b7000, clock: 0))
        buf.append(
            Event(
                kind: .hostTranslate, timestamp: 5_003_000_000, device: hostBlk, address: 0xfff78000,
                address2: 0x500_0000, clock: 0))
        GuestHostMerger(guestClocks: [1], hostClock: 0).merge(&buf)
        return buf.events.filter { $0.kind == .iommuMap }.map(\.device)
    }

    @Test func aDriverLoopOnOneCPUOutranksAnotherDomainsTranslations() {
        #expect(Self.refill(secondCPU: 0, gapNs: 2_000) == [1, 1])
        #expect(Self.refill(secondCPU: 1, gapNs: 2_000) == [1, 0])
        #expect(Self.refill(secondCPU: 0, gapNs: 1_000_000) == [1, 0])
    }
    /// One allocation mapped as two segments (a 6.1 intel-strict boot's virtio-blk ring, two pages): the first
    /// segment's page is never translated, but virtio-net translates the same IOVA to another page in its own
    /// domain soon after; the second segment is virtio-blk's by its own page. The next map on the CPU, continuing
    /// this one, decides the run's first map as the map before decides the others (``AttributionEvidence/sameCPURun``).
    /// Twins: the second segment on another CPU, or 1 ms later, leaves the first to virtio-net's translation.
    static func firstSegment(secondCPU: UInt16, gapNs: UInt64) -> [UInt16] {
        var buf = EventBuffer()
        _ = buf.device(DeviceInfo(name: "0000:00:02.0", sid: 0x10))
        _ = buf.device(DeviceInfo(name: "0000:00:03.0", sid: 0x18))
        let hostBlk = buf.device(DeviceInfo(name: "00:02.00", sid: 0x10))
        let hostNet = buf.device(DeviceInfo(name: "00:03.00", sid: 0x18))
        var m1 = Event(
            kind: .iommuMap, timestamp: 1_000_000, address: 0xffffe000, address2: 0x14963000, size: 4096, clock: 1)
        m1.cpu = 1
        var m2 = Event(
            kind: .iommuMap, timestamp: 1_000_000 + gapNs, address: 0xfffff000, address2: 0x14962000, size: 4096,
            clock: 1)
        m2.cpu = secondCPU
        buf.append(m1)
        buf.append(m2)
        buf.append(
            Event(
                kind: .hostTranslate, timestamp: 5_001_200_000, device: hostBlk, address: 0xfffff000,
                address2: 0x14962000, clock: 0))
        buf.append(
            Event(
                kind: .hostTranslate, timestamp: 5_003_000_000, device: hostNet, address: 0xffffe000,
                address2: 0x12fe5000, clock: 0))
        GuestHostMerger(guestClocks: [1], hostClock: 0).merge(&buf)
        return buf.events.filter { $0.kind == .iommuMap }.map(\.device)
    }

    @Test func aRunsFirstMapFollowsTheMapThatContinuesIt() {
        #expect(Self.firstSegment(secondCPU: 1, gapNs: 35_000) == [0, 0])
        #expect(Self.firstSegment(secondCPU: 0, gapNs: 35_000) == [1, 0])
        #expect(Self.firstSegment(secondCPU: 1, gapNs: 1_000_000) == [1, 0])
    }
}
