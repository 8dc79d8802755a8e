import Foundation
import Testing
import TraceFormat
@testable import TraceIngest

@Suite struct FtraceTextImporterTests {
    @Test func realTracefsFileGives1092IommuEvents() throws {
        let input = try IngestInput.open(Fixtures.path("\(Fixtures.strict)/guest-ftrace-iommu.txt"))
        let (buf, d) = try Fixtures.run(FtraceTextImporter(), input, source: 3, clock: 1)
        let maps = buf.events.filter { $0.kind == .iommuMap }
        let unmaps = buf.events.filter { $0.kind == .iommuUnmap }
        #expect(maps.count + unmaps.count == 1092)
        #expect(d.understood["map"] == maps.count)
        #expect(d.understood["unmap"] == unmaps.count)
        #expect(d.skipped == 0)
        #expect(d.lostEvents == 0)
        #expect(d.comments == 12)
        // First line: insmod-97 [000] ..... 3.279753: map: IOMMU: iova=0x00000000ffffe000 - 0x00000000fffff000 paddr=0x000000000420a000 size=4096
        let first = try #require(buf.events.first)
        #expect(first.kind == .iommuMap)
        #expect(first.timestamp == 3_279_753_000)
        #expect(first.address == 0xffffe000)
        #expect(first.address2 == 0x420a000)
        #expect(first.size == 4096)
        #expect(first.position == 13)
        #expect(first.source == 3)
        #expect(first.clock == 1)
        #expect(!first.hasDevice)
        let u = try #require(unmaps.first)
        #expect(u.address == 0xffff8000)
        #expect(u.address2 == 4096)
        #expect(u.timestamp == 3_311_141_000)
    }

    @Test func traceCmdReportTextsParse() throws {
        for (file, count) in [("guest-trace-cmd-v6-report.txt", 288), ("guest-trace-cmd-v7-report.txt", 576)] {
            let input = try IngestInput.open(Fixtures.path("\(Fixtures.strict)/\(file)"))
            let (buf, d) = try Fixtures.run(FtraceTextImporter(), input)
            #expect(buf.events.count == count, "\(file)")
            #expect(d.skipped == 0)
            #expect(d.comments == 1)  // cpus=2
        }
    }

    /// The report texts and the binary .dat files they were printed from give the same events (µs apart).
    @Test func reportTextMatchesTheDatFile() throws {
        for (text, dat) in [
            ("guest-trace-cmd-v6-report.txt", "guest-trace-cmd-v6.dat.zst"),
            ("guest-trace-cmd-v7-report.txt", "guest-trace-cmd-v7-zstd.dat")
        ] {
            let a = try Fixtures.run(
                FtraceTextImporter(), IngestInput.open(Fixtures.path("\(Fixtures.strict)/\(text)"))
            ).0.events
            let b = try Fixtures.run(TraceDatImporter(), IngestInput.open(Fixtures.path("\(Fixtures.strict)/\(dat)"))).0
                .events
            #expect(a.count == b.count)
            #expect(a.map(\.kind) == b.map(\.kind))
            #expect(
                a.map(\.address) == b.map(\.address) && a.map(\.address2) == b.map(\.address2)
                    && a.map(\.size) == b.map(\.size))
            let worst =
                zip(a, b).map {
                    $0.timestamp > $1.timestamp ? $0.timestamp - $1.timestamp : $1.timestamp - $0.timestamp
                }.max() ?? 0
            #expect(worst < 1000, "\(text): \(worst) ns")
        }
    }

    /// Real Linux 6.12 `dma:*` lines (Debian 6.12.95-1~bpo12+1 guest, QEMU 7.2.22 intel-iommu, strict): the
    /// first 56 lines of traces/raw/linux6.12-intel-strict/guest-ftrace.txt.zst (tools/capture intel-strict
    /// --kernel 6.12). 6.12 prints `dma_unmap_page` with `dma_addr=` (no `addr=`), addresses without `0x`, an
    /// empty `attrs=`, and `dma_alloc` with symbolic `flags=` and `attrs=`.
    @Test func realLinux612DmaLines() throws {
        let input = try IngestInput.open(Fixtures.path("real/ftrace-dma-linux6.12-intel-strict-real.txt"))
        let (buf, d) = try Fixtures.run(FtraceTextImporter(), input)
        #expect(d.skipped == 0)
        #expect(d.unknown.isEmpty)
        #expect(d.comments == 12)
        #expect(d.understood["dma_alloc"] == 2)
        #expect(d.understood["dma_map_page"] == 5)
        #expect(d.understood["dma_unmap_page"] == 4)
        #expect(d.understood["map"] == 11 && d.understood["unmap"] == 4)
        #expect(d.understood["add_device_to_group"] == 9 && d.understood["attach_device_to_domain"] == 9)
        #expect(d.totalUnderstood == 44)
        // 3.428853: dma_alloc: 0000:00:02.0 dir=BIDIRECTIONAL dma_addr=ffffe000 size=6726 virt_addr=0000000026345548
        //           flags=GFP_KERNEL|__GFP_NOWARN|__GFP_ZERO attrs=NO_WARN
        let alloc = try #require(buf.events.first { $0.kind == .dmaAlloc })
        #expect(alloc.timestamp == 3_428_853_000 && alloc.address == 0xffffe000 && alloc.size == 6726)
        #expect(alloc.address2 == 0x26345548 && alloc.direction == .bidirectional)
        #expect(alloc.aux == (GFPFlags.kernel.rawValue | GFPFlags.noWarn.rawValue | GFPFlags.zero.rawValue))
        #expect(alloc.aux2 == DMAAttributes.noWarn.rawValue)
        // 3.447679: dma_map_page: 0000:00:02.0 dir=TO_DEVICE dma_addr=ffffb0f8 size=16 phys_addr=399c0f8 attrs=
        let maps = buf.events.filter { $0.kind == .dmaMap }
        #expect(maps.count == 5)
        #expect(maps[0].address == 0xffffb0f8 && maps[0].address2 == 0x399c0f8 && maps[0].size == 16)
        #expect(maps[0].direction == .toDevice && maps[0].aux == 0 && maps[0].detail == MapAPI.page.rawValue)
        #expect(maps[1].direction == .fromDevice && maps[1].size == 4096 && maps[1].address == 0xffffa000)
        // 3.449965: dma_unmap_page: 0000:00:02.0 dir=TO_DEVICE dma_addr=ffff8440 size=48 attrs=
        let unmaps = buf.events.filter { $0.kind == .dmaUnmap }
        #expect(unmaps.map(\.address) == [0xffff8440, 0xffffb0f8, 0xffffa000, 0xffff9108])
        #expect(unmaps.map(\.size) == [48, 16, 4096, 1])
        #expect(unmaps[0].timestamp == 3_449_965_000 && unmaps[0].direction == .toDevice)
        // every dma:* event names its device; the iommu map/unmap events do not
        let dev = try #require(buf.metadata.devices.firstIndex { $0.name == "0000:00:02.0" })
        #expect((maps + unmaps + [alloc]).allSatisfy { Int($0.device) == dev })
        #expect(buf.events.filter { $0.kind == .iommuMap }.allSatisfy { !$0.hasDevice })
    }

    /// Twin of the real 6.12 test: the same lines with the unmap's address field damaged (`dma_addr=` ->
    /// `dma_adr=`) are reported and skipped, not imported with a zero address.
    @Test func realLinux612DmaLinesWithADamagedFieldAreSkipped() throws {
        let text = try String(
            contentsOfFile: Fixtures.path("real/ftrace-dma-linux6.12-intel-strict-real.txt"), encoding: .utf8)
        let damaged = text.replacingOccurrences(
            of: "dma_unmap_page: 0000:00:02.0 dir=TO_DEVICE dma_addr=ffff8440",
            with: "dma_unmap_page: 0000:00:02.0 dir=TO_DEVICE dma_adr=ffff8440")
        #expect(damaged != text)
        let (buf, d) = try Fixtures.run(FtraceTextImporter(), Fixtures.text(damaged))
        #expect(d.skipped == 1)
        #expect(d.understood["dma_unmap_page"] == 3)
        #expect(!buf.events.contains { $0.kind == .dmaUnmap && $0.address == 0 })
    }

    @Test func syntheticDmaFile() throws {
        let input = try IngestInput.open(Fixtures.path("synthetic/ftrace-dma-virtio-linux6.15-synthetic.txt"))
        let (buf, d) = try Fixtures.run(FtraceTextImporter(), input)
        #expect(d.skipped == 0)
        #expect(d.understood["dma_map_page"] == 106)
        #expect(d.understood["dma_unmap_page"] == 106)
        #expect(d.understood["dma_alloc"] == 8)
        #expect(d.understood["dma_free"] == 5)
        #expect(d.understood["dma_map_sg"] == 2)
        #expect(d.understood["dma_unmap_sg"] == 2)
        #expect(d.totalUnderstood == 229)
        // dma_map_sg: 0000:00:1f.2 dir=FROM_DEVICE dma_addrs={0xfffe6000} sizes={0x2000} phys_addrs={0x58c3000,0x51cc000}
        let sg = buf.events.filter { $0.kind == .dmaMap && $0.detail == MapAPI.sg.rawValue }
        #expect(sg.count == 2)
        #expect(sg[1].address == 0xfffe6000 && sg[1].size == 0x2000 && sg[1].address2 == 0x58c3000)
        #expect(sg[1].direction == .fromDevice)
        #expect(buf.metadata.devices.map(\.name) == ["0000:00:1f.2", "0000:00:02.0", "0000:00:03.0"])
        let alloc = try #require(buf.events.first)
        #expect(alloc.kind == .dmaAlloc && alloc.address == 0xfffe9000 && alloc.size == 91392)
        #expect(alloc.address2 == 0x5caf4f21 && alloc.aux == GFPFlags.kernel.rawValue)
        let skip = buf.events.first { $0.kind == .dmaUnmap && $0.aux == DMAAttributes.skipCPUSync.rawValue }
        #expect(skip != nil)
    }

    /// Lost-event counts of any size add up to at most `Int.max` (two headers of ~10^19 trapped, found by the
    /// fuzzer: Tests/Fuzz/ftrace/crashes). Twin: smaller counts add up exactly.
    @Test func hugeLostCountsSaturate() throws {
        func lost(_ written: String) throws -> Int {
            let header = "# entries-in-buffer/entries-written: 1/\(written)   #P:2\n"
            let line = "  a-1 [000] ..... 1.000000: map: IOMMU: iova=0x1000 paddr=0x2000 size=4096\n"
            return try Fixtures.run(
                FtraceTextImporter(), Fixtures.text(header + header + line + "CPU:0 [LOST 5 EVENTS]\n")
            ).1
                .lostEvents
        }
        #expect(try lost("10900000000000000000") == Int.max)
        #expect(try lost("1001") == 2005)
    }

    /// Every variant of formats.md §1 on one input.
    @Test func allVariants() throws {
        let text = """
            # tracer: nop
            # entries-in-buffer/entries-written: 10/14   #P:2
                      blkid-203     [000] .....     2.381707: dma_map_page: 0000:00:02.0 dir=TO_DEVICE dma_addr=ffffb640 size=16 phys_addr=429e640 attrs=
                      blkid-203     [000] .....     2.381708: dma_map_phys: 0000:00:02.0 dir=FROM_DEVICE dma_addr=ffffb000 size=1 phys_addr=429e000 attrs=MMIO|SKIP_CPU_SYNC
                     <idle>-0       [000] d.h1.     2.381959: dma_unmap_phys: 0000:00:02.0 dir=TO_DEVICE dma_addr=ffffb640 size=16 attrs=
                       (udev-worker)-191 [001] ..... 2.381609: dma_alloc: 0000:00:03.0 dma_addr=ffff7000 size=1734 virt_addr=00000000f3a3e239 flags=GFP_KERNEL|__GFP_NOWARN|__GFP_ZERO attrs=
                       (udev-worker)-191 [001] ..... 2.381610: dma_free: 0000:00:03.0 dma_addr=ffff7000 size=1734 virt_addr=00000000f3a3e239 attrs=
                     cdrom_id-207     [001] .....     2.383913: dma_map_sg: 0000:00:1f.2 dir=FROM_DEVICE nents=128/130 ents=2/3 [TRUNCATED] dma_addrs={0xfffe6000,0xfffe4000} sizes={0x2000,0x1000} phys_addrs={0x58c3000,0x51cc000} attrs=
                     cdrom_id-207     [001] .....     2.383914: dma_map_sg_err: 0000:00:1f.2 dir=FROM_DEVICE dma_addrs={0x58c3000} err=-12 attrs=
                     cdrom_id-207     [001] .....     2.383915: dma_unmap_sg: 0000:00:1f.2 dir=FROM_DEVICE phys_addrs={0x58c3000,0x51cc000} attrs=
                     cdrom_id-207     [001] .....     2.383916: dma_sync_sg_for_cpu: 0000:00:1f.2 dir=FROM_DEVICE dma_addrs={0xfffe6000} sizes={0x2000}
                     cdrom_id-207     [001] .....     2.383917: dma_sync_single_for_device: 0000:00:1f.2 dir=TO_DEVICE dma_addr=fffe6000 size=64
            CPU:1 [LOST 4 EVENTS]
                     insmod-97 (     97) [001] d..1.  3.806007: swiotlb_bounced: dev_name: 0000:00:02.0 dma_mask=ffffffffffffffff dev_addr=1fd77000 size=4096 FORCE
                     insmod-97 [001] d..1  3.806008: swiotlb_bounced: dev_name: 0000:00:02.0 dma_mask=ffffffff dev_addr=1fd78000 size=4096 NO_FORCE
                     insmod-97 [001] 3.806009: map: IOMMU: iova=0x00000000fff00000 paddr=0x0000000012345000 size=8192
                     insmod-97 [001] 3.806010: unmap: IOMMU: iova=0x00000000fff00000 size=8192 unmapped_size=8192
                     insmod-97 [001] 3.806011: add_device_to_group: IOMMU: groupID=7 device=0000:00:04.0
                     insmod-97 [001] 3.806012: attach_device_to_domain: IOMMU: device=0000:00:04.0
                     insmod-97 [001] 3.806013: io_page_fault: IOMMU:AMD-Vi 0000:00:04.0 iova=0x0000000001000000 flags=0x0001
                     fio-1 [000] .... 5.000001: map_sg: dev=0000:00:17.0 [1/9] dev_addr=0xf8f90000 phys_addr=0x158051000 size=4096
                     fio-1 [000] .... 5.000002: unmap_single: dev=0000:00:17.0 dev_addr=0xf8f90000 size=4096
                     fio-1 [000] .... 5.000003: qi_submit: iotlb_inv dmar0: 0x1 0x2 0x3 0x4
                     fio-1 [000] .... 5.000004: sched_switch: prev_comm=fio prev_pid=1
            this is not a trace line
            """
        let (buf, d) = try Fixtures.run(FtraceTextImporter(), Fixtures.text(text))
        #expect(d.lostEvents == 8)
        #expect(d.skipped == 1)
        #expect(d.problems.first?.description.hasPrefix("test.txt:25: not an ftrace event line") == true)
        #expect(d.unknown == ["sched_switch": 1])
        #expect(d.ignored == ["qi_submit": 1])
        let kinds = buf.events.map(\.kind)
        #expect(
            kinds == [
                .lostEvents, .dmaMap, .dmaMap, .dmaUnmap, .dmaAlloc, .dmaFree, .dmaMap, .dmaMap, .truncatedList,
                .dmaMapError, .dmaUnmap, .dmaUnmap, .dmaSync, .dmaSync, .lostEvents, .swiotlbBounce, .swiotlbBounce,
                .iommuMap, .iommuUnmap, .iommuGroupAdd, .iommuAttach, .iommuPageFault, .dmaMap, .dmaUnmap
            ])
        let e = buf.events
        #expect(
            e[2].detail == MapAPI.phys.rawValue
                && e[2].aux == (DMAAttributes.mmio.rawValue | DMAAttributes.skipCPUSync.rawValue))
        #expect(
            e[4].direction == .bidirectional
                && e[4].aux == (GFPFlags.kernel.rawValue | GFPFlags.noWarn.rawValue | GFPFlags.zero.rawValue))
        #expect(e[6].eventFlags.contains(.truncated) && e[7].aux2 == 1 && e[7].address == 0xfffe4000)
        #expect(e[8].aux == 2 && e[8].aux2 == 3)
        #expect(e[9].aux == UInt32(bitPattern: -12) && e[9].eventFlags.contains(.error))
        #expect(e[11].address2 == 0x51cc000 && e[11].aux2 == 1)
        #expect(e[12].detail == SyncTarget.forCPU.rawValue && e[13].detail == SyncTarget.forDevice.rawValue)
        #expect(e[14].aux == 4 && e[14].aux2 == 1)
        #expect(e[15].detail == SwiotlbMode.force.rawValue && e[15].address == 0x1fd77000 && e[15].address2 == .max)
        #expect(e[16].detail == SwiotlbMode.noForce.rawValue)
        #expect(e[17].address == 0xfff00000 && e[17].address2 == 0x12345000 && e[17].size == 8192)
        #expect(e[19].aux == 7 && buf.metadata.devices[Int(e[19].device)].iommuGroup == 7)
        #expect(e[21].eventFlags.contains(.write) && buf.string(e[21].aux2) == "AMD-Vi" && e[21].address == 0x1000000)
        #expect(e[22].detail == MapAPI.intelSG.rawValue && e[22].aux2 == 0 && e[22].address2 == 0x158051000)
        #expect(e[23].timestamp == 5_000_002_000)
    }

    @Test func binaryGarbageIsAnErrorNamingTheFile() throws {
        let junk = IngestInput(path: "junk.bin", bytes: [0x00, 0x01, 0x02, 0x0A, 0xFF, 0xFE, 0x0A])
        #expect(throws: IngestError.self) { try Fixtures.run(FtraceTextImporter(), junk) }
        do {
            _ = try Fixtures.run(FtraceTextImporter(), junk)
        } catch let e as IngestError {
            #expect(
                e.description.hasPrefix(
                    "junk.bin: byte 0: no ftrace event line found; 2 malformed lines (first: junk.bin:1: binary data in a text input)"
                ))
        }
    }

    @Test func truncatedAndMalformedLinesAreReportedWithLine() throws {
        let text = """
                      insmod-97      [000] .....     3.279753: map: IOMMU: iova=0x00000000ffffe000 - 0x00000000fffff000 paddr=0x000000000420a000 size=4096
                      insmod-97      [000] .....     3.279754: map: IOMMU: iova=0x00000000ffffe000 - 0x0000
                      insmod-97      [000] .....     3.279755: dma_map_page: 0000:00:02.0 dir=SIDEWAYS dma_addr=1 size=1 phys_addr=1 attrs=
                      insmod-97      [000] .....     3.2797
            """
        let (buf, d) = try Fixtures.run(FtraceTextImporter(), Fixtures.text(text, path: "t.txt"))
        #expect(buf.events.count == 1)
        #expect(d.skipped == 3)
        #expect(d.problems.map(\.position) == [2, 3, 4])
        #expect(d.problems[0].description.hasPrefix("t.txt:2: malformed map event"))
    }

    @Test func sniffing() {
        func score(_ s: String) -> Int { Array(s.utf8).withUnsafeBytes { FtraceTextImporter.sniff($0) } }
        #expect(score("# tracer: nop\n#\n") == 95)
        #expect(score("cpus=2\n  dd-152 [001] 11.918000: map: IOMMU: iova=0x1 paddr=0x2 size=4096\n") == 95)
        #expect(score("  dd-152 [001] 11.918000: map: IOMMU: iova=0x1 paddr=0x2 size=4096\n") == 80)
        #expect(score("[    0.000000] Linux version 6.1.0\n") == 0)
    }

    /// Event bodies pasted without the `comm-pid [cpu] seconds:` columns are read (timestamp 0) when the
    /// name is one the importer knows; any other `word: text` line stays a malformed line, not an event.
    @Test func bodiesWithoutPrefix() throws {
        let text = """
            iommu:map: IOMMU: iova=0x00000000ffffe000 paddr=0x000000000420a000 size=4096
            map: IOMMU: iova=0x00000000fffff000 - 0x0000000100000000 paddr=0x000000000422b000 size=4096
            kernel: IOMMU: iova=0x0000000000001000 paddr=0x0000000000002000 size=4096
            dma_map_page: nothing that parses
            """
        let (buf, d) = try Fixtures.run(FtraceTextImporter(), Fixtures.text(text))
        #expect(buf.events.map(\.kind) == [.iommuMap, .iommuMap])
        #expect(buf.events.map(\.address) == [0xffffe000, 0xfffff000])
        #expect(buf.events.allSatisfy { $0.timestamp == 0 })
        #expect(d.skipped == 2)
    }

    /// The guest's CPU count (the IOVA allocator check's flush-queue timer may run on any CPU): tracefs' `#P:N`,
    /// trace-cmd's `cpus=N`, raised by a higher `[cpu]` column; none without either. The twins are the inputs
    /// that state nothing or a smaller count.
    @Test func guestCPUCount() throws {
        func cpus(_ text: String) throws -> Int? {
            try Fixtures.run(FtraceTextImporter(), Fixtures.text(text)).0.metadata.capture.guestCPUs
        }
        let line = "  dd-152 [001] 11.918000: map: IOMMU: iova=0x1000 paddr=0x2000 size=4096"
        #expect(try cpus("# tracer: nop\n# entries-in-buffer/entries-written: 1/1   #P:4\n" + line) == 4)
        #expect(try cpus("cpus=8\n" + line) == 8)
        #expect(try cpus(line) == 2)
        #expect(try cpus("# entries-in-buffer/entries-written: 1/1   #P:1\n" + line) == 2)
        #expect(try cpus("iommu:map: IOMMU: iova=0x1000 paddr=0x2000 size=4096") == nil)
    }

    /// Every event of a line records its `[cpu]` column (format 3.0's ``Event/cpu``), DMA-API events included:
    /// 5.10's intel-iommu allocates and frees IOVAs in the calling CPU's cache. Twins: a bare event line (no
    /// column) and a `CPU:n [LOST ...]` line after a CPU-3 line record none.
    @Test func everyEventRecordsItsLinesCPU() throws {
        let text = """
              kworker/1:1-40 [003] 11.918000: map_single: dev=0000:00:02.0 dev_addr=0xfffff000 phys_addr=0x12345000 size=4096
            CPU:2 [LOST 5 EVENTS]
              kworker/1:1-40 [001] 11.919000: unmap_single: dev=0000:00:02.0 dev_addr=0xfffff000 size=4096
            iommu:map: IOMMU: iova=0x1000 paddr=0x2000 size=4096
            """
        let events = try Fixtures.run(FtraceTextImporter(), Fixtures.text(text)).0.events
        #expect(events.map(\.kind) == [.dmaMap, .lostEvents, .dmaUnmap, .iommuMap])
        #expect(events.map(\.cpu) == [3, nil, 1, nil])
        #expect(FtraceTextImporter.recordsCPU)
    }
}
