import Testing
@testable import TraceIngest
import TraceFormat

/// Builds small trace.dat v6 files by hand to exercise what the real captures do not contain: `dma:*` records
/// with dynamic arrays, io_page_fault, group add, swiotlb, large (type_len 0) events, time extends, padding,
/// absolute timestamps and both missed-events forms.
private struct DatBuilder {
    var out: [UInt8] = []

    mutating func u8(_ v: UInt8) { out.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
    mutating func bytes(_ s: String) { out += Array(s.utf8) }
    mutating func cstr(_ s: String) { bytes(s); u8(0) }
    mutating func text64(_ s: String) { u64(UInt64(s.utf8.count)); bytes(s) }

    static func common(_ name: String, _ id: Int, _ fields: String) -> String {
        """
        name: \(name)
        ID: \(id)
        format:
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
        \tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
        \tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

        \(fields)
        print fmt: "synthetic"

        """
    }
}

/// One ring-buffer record: a u32 header then the data.
private struct Page {
    var data: [UInt8] = []
    mutating func header(type: UInt32, delta: UInt32) { put32(type | delta << 5) }
    mutating func put32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data += $0 } }
    mutating func event(delta: UInt32, _ record: [UInt8]) {
        var r = record
        while r.count % 4 != 0 { r.append(0) }
        if r.count <= 112 {
            header(type: UInt32(r.count / 4), delta: delta)
        } else {
            header(type: 0, delta: delta)
            put32(UInt32(r.count + 4))
        }
        data += r
    }
    /// A record of `size` bytes with `common_type` = id and the given fields written at their offsets.
    static func record(id: UInt16, size: Int, _ writes: [(Int, [UInt8])]) -> [UInt8] {
        var r = [UInt8](repeating: 0, count: size)
        r[0] = UInt8(id & 0xFF)
        r[1] = UInt8(id >> 8)
        for (at, b) in writes { r.replaceSubrange(at..<(at + b.count), with: b) }
        return r
    }
}

private func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
private func loc(_ offset: Int, _ length: Int) -> [UInt8] { le(UInt32(offset | length << 16)) }
private func cbytes(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }

private func syntheticDat() throws -> [UInt8] {
    let dir = "real/intel-viommu-strict/tracefs/"
    let dmaMapPage = DatBuilder.common(
        "dma_map_page", 1300,
        """
        \tfield:__data_loc char[] device;\toffset:8;\tsize:4;\tsigned:0;
        \tfield:u64 phys_addr;\toffset:16;\tsize:8;\tsigned:0;
        \tfield:u64 dma_addr;\toffset:24;\tsize:8;\tsigned:0;
        \tfield:size_t size;\toffset:32;\tsize:8;\tsigned:0;
        \tfield:enum dma_data_direction dir;\toffset:40;\tsize:4;\tsigned:0;
        \tfield:unsigned long attrs;\toffset:48;\tsize:8;\tsigned:0;
        """)
    let dmaMapSG = DatBuilder.common(
        "dma_map_sg", 1301,
        """
        \tfield:__data_loc char[] device;\toffset:8;\tsize:4;\tsigned:0;
        \tfield:__data_loc u64[] phys_addrs;\toffset:12;\tsize:4;\tsigned:0;
        \tfield:__data_loc u64[] dma_addrs;\toffset:16;\tsize:4;\tsigned:0;
        \tfield:__data_loc unsigned int[] lengths;\toffset:20;\tsize:4;\tsigned:0;
        \tfield:enum dma_data_direction dir;\toffset:24;\tsize:4;\tsigned:0;
        \tfield:unsigned long attrs;\toffset:32;\tsize:8;\tsigned:0;
        """)
    let groupAdd = DatBuilder.common(
        "add_device_to_group", 1150,
        """
        \tfield:int gid;\toffset:8;\tsize:4;\tsigned:1;
        \tfield:__data_loc char[] device;\toffset:12;\tsize:4;\tsigned:1;
        """)
    var b = DatBuilder()
    b.out = TraceDatFile.magic
    b.cstr("6")
    b.u8(0); b.u8(8); b.u32(4096)
    b.cstr("header_page"); b.text64(try BinFixtures.text(dir + "header_page.txt"))
    b.cstr("header_event"); b.text64(try BinFixtures.text(dir + "header_event.txt"))
    b.u32(0)  // ftrace formats
    b.u32(3)  // systems
    b.cstr("dma"); b.u32(2); b.text64(dmaMapPage); b.text64(dmaMapSG)
    b.cstr("iommu"); b.u32(2); b.text64(try BinFixtures.text(dir + "format_iommu_io_page_fault.txt"));
    b.text64(groupAdd)
    b.cstr("swiotlb"); b.u32(1); b.text64(try BinFixtures.text(dir + "format_swiotlb_bounced.txt"))
    b.u32(0); b.u32(0); b.u64(0)  // kallsyms, printk, cmdlines
    b.u32(1)  // cpus
    b.bytes("options  "); b.u8(0)
    b.u16(5); let uname = cbytes("Linux guest 6.15.0-test x86_64"); b.u32(UInt32(uname.count)); b.out += uname
    b.u16(4); let clock = cbytes("[local] global"); b.u32(UInt32(clock.count)); b.out += clock
    b.u16(2); let stat = cbytes("CPU: 0\nentries: 8\noverrun: 10\ncommit overrun: 0\nbytes: 300\ndropped events: 0\n")
    b.u32(UInt32(stat.count)); b.out += stat
    b.u16(0)
    b.bytes("flyrecord"); b.u8(0)
    let dataAt = (b.out.count + 16 + 4095) / 4096 * 4096
    b.u64(UInt64(dataAt)); b.u64(2 * 4096)
    b.out += [UInt8](repeating: 0, count: dataAt - b.out.count)

    // Page 1 (missed events, count not stored).
    var p = Page()
    // time extend by 5 s: delta low 27 bits in the header, the rest in the next word
    let ext: UInt64 = 5_000_000_000
    p.header(type: 30, delta: UInt32(ext & ((1 << 27) - 1))); p.put32(UInt32(ext >> 27))
    p.event(
        delta: 100,
        Page.record(
            id: 1300, size: 69,
            [
                (8, loc(56, 13)), (16, le(UInt64(0x429e640))), (24, le(UInt64(0xffffb640))), (32, le(UInt64(16))),
                (40, le(UInt32(1))), (56, cbytes("0000:00:02.0"))
            ]))
    // discarded event (padding with a delta): 12 bytes in all
    p.header(type: 29, delta: 1); p.put32(8); p.put32(0xDEAD)
    p.event(
        delta: 199,
        Page.record(
            id: 1301, size: 84,
            [
                (8, loc(40, 13)), (12, loc(56, 16)), (16, loc(72, 8)), (20, loc(80, 4)), (24, le(UInt32(2))),
                (40, cbytes("0000:00:1f.2")), (56, le(UInt64(0x58c3000))), (64, le(UInt64(0x51cc000))),
                (72, le(UInt64(0xfffe6000))), (80, le(UInt32(0x2000)))
            ]))
    // absolute timestamp 7 s
    let abs: UInt64 = 7_000_000_000
    p.header(type: 31, delta: UInt32(abs & ((1 << 27) - 1))); p.put32(UInt32(abs >> 27))
    p.event(
        delta: 0,
        Page.record(
            id: 1147, size: 46,
            [
                (8, loc(28, 13)), (12, loc(41, 5)), (16, le(UInt64(0x1000000))), (24, le(Int32(1))),
                (28, cbytes("0000:00:05.0")), (41, cbytes("dmar"))
            ]))
    p.event(
        delta: 10, Page.record(id: 1150, size: 29, [(8, le(Int32(7))), (12, loc(16, 13)), (16, cbytes("0000:00:05.0"))])
    )
    p.event(
        delta: 10,
        Page.record(
            id: 349, size: 57,
            [
                (8, loc(44, 13)), (16, le(UInt64.max)), (24, le(UInt64(0x1fd77000))), (32, le(UInt64(4096))), (40, [1]),
                (44, cbytes("0000:00:02.0"))
            ]))
    p.event(delta: 10, Page.record(id: 9999, size: 8, []))
    var page1 = le(UInt64(1_000_000_000)) + le(UInt64(p.data.count) | 1 << 31) + p.data
    page1 += [UInt8](repeating: 0, count: 4096 - page1.count)

    // Page 2 (missed events with the count stored after the data).
    var q = Page()
    q.event(
        delta: 5, Page.record(id: 1150, size: 29, [(8, le(Int32(8))), (12, loc(16, 13)), (16, cbytes("0000:00:02.0"))]))
    var page2 = le(UInt64(8_000_000_000)) + le(UInt64(q.data.count) | 3 << 30) + q.data + le(UInt64(5))
    page2 += [UInt8](repeating: 0, count: 4096 - page2.count)
    return b.out + page1 + page2
}

@Suite struct TraceDatSyntheticTests {
    @Test func ringBufferRulesAndDMAEvents() throws {
        let dat = try syntheticDat()
        var importer = TraceDatImporter()
        var sink = EventBuffer()
        var diagnostics = IngestDiagnostics()
        try importer.run(
            IngestInput(path: "s.dat", bytes: dat), source: 0, clock: 0, into: &sink, diagnostics: &diagnostics)
        #expect(importer.header?.kernelRelease == "6.15.0-test")
        #expect(importer.header?.traceClock == "local")
        #expect(sink.metadata.clocks[0].name == "guest-trace-local")
        #expect(
            diagnostics.understood == [
                "dma:dma_map_page": 1, "dma:dma_map_sg": 1, "iommu:io_page_fault": 1,
                "iommu:add_device_to_group": 2, "swiotlb:swiotlb_bounced": 1
            ])
        // pages: 1 (count unknown) + 5 (stored); CPUSTAT says 10 overran, so 4 more
        #expect(diagnostics.lostEvents == 10)
        #expect(importer.header?.cpuStats.first?.overrun == 10)
        #expect(
            diagnostics.problems.map(\.message).contains(
                "1 records with event id 9999, which no embedded format describes"))

        let kinds = sink.events.map(\.kind)
        #expect(
            kinds == [
                .lostEvents, .dmaMap, .dmaMap, .iommuPageFault, .iommuGroupAdd, .swiotlbBounce,
                .lostEvents, .iommuGroupAdd, .lostEvents
            ])
        try #require(kinds.count == 9)
        #expect(sink.events[8].aux == 4 && sink.events[8].aux2 == 0)
        let e = sink.events
        #expect(e[0].timestamp == 1_000_000_000 && e[0].aux == 0)
        // page time + time extend + delta
        #expect(e[1].timestamp == 6_000_000_100)
        #expect(e[1].address == 0xffff_b640 && e[1].address2 == 0x429_e640 && e[1].size == 16)
        #expect(e[1].direction == .toDevice && e[1].detail == MapAPI.page.rawValue)
        #expect(sink.metadata.devices[Int(e[1].device)].name == "0000:00:02.0")
        // after padding (+1, as trace-cmd's kbuffer counts it) and delta 199; the one dma segment of the sg list
        #expect(e[2].timestamp == 6_000_000_300)
        #expect(e[2].address == 0xfffe_6000 && e[2].address2 == 0x58c_3000 && e[2].size == 0x2000)
        #expect(e[2].detail == MapAPI.sg.rawValue && e[2].direction == .fromDevice && e[2].aux2 == 0)
        #expect(sink.metadata.devices[Int(e[2].device)].name == "0000:00:1f.2")
        let fault = try #require(sink.events.first { $0.kind == .iommuPageFault })
        #expect(fault.timestamp == 7_000_000_000)
        #expect(fault.address == 0x100_0000 && fault.aux == 1 && fault.eventFlags.contains(.write))
        #expect(sink.string(fault.aux2) == "dmar")
        let group = try #require(sink.events.first { $0.kind == .iommuGroupAdd })
        #expect(group.aux == 7 && sink.metadata.devices[Int(group.device)].iommuGroup == 7)
        let bounce = try #require(sink.events.first { $0.kind == .swiotlbBounce })
        #expect(bounce.address == 0x1fd7_7000 && bounce.size == 4096 && bounce.address2 == UInt64.max)
        #expect(bounce.detail == SwiotlbMode.force.rawValue)
        let lost = e[6]
        #expect(lost.aux == 5 && lost.timestamp == 8_000_000_000)
        #expect(e[7].timestamp == 8_000_000_005)
        // provenance: byte offset of the event header in the file
        #expect(e[7].position == UInt64(dat.count - 4096 + 16))
        #expect(sink.metadata.devices.first { $0.name == "0000:00:02.0" }?.iommuGroup == 8)
    }
}
