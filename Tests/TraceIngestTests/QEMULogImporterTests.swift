import Testing
@testable import TraceIngest
import TraceFormat

private func importLog(_ text: String, path: String = "qemu.log") throws -> (EventBuffer, IngestDiagnostics) {
    try importLog(Array(text.utf8), path: path)
}

private func importLog(_ bytes: [UInt8], path: String = "qemu.log") throws -> (EventBuffer, IngestDiagnostics) {
    var importer = QEMULogImporter()
    var sink = EventBuffer()
    var diagnostics = IngestDiagnostics()
    try importer.run(IngestInput(path: path, bytes: bytes), source: 1, clock: 2, into: &sink, diagnostics: &diagnostics)
    return (sink, diagnostics)
}

@Suite struct QEMULogImporterTests {
    @Test func realLogExactCounts() throws {
        let bytes = try BinFixtures.content("real/intel-viommu-strict/qemu-7.2-trace-full.log.zst")
        let (buffer, diagnostics) = try importLog(bytes, path: "qemu-7.2-trace-full.log")
        #expect(diagnostics.understood["vtd_dmar_fault"] == 96)
        #expect(diagnostics.understood["vtd_dmar_translate"] == 3574)
        #expect(diagnostics.understood["vtd_iotlb_page_update"] == 1909)
        #expect(diagnostics.understood["vtd_iotlb_page_hit"] == 1665)
        #expect(diagnostics.understood["virtqueue_pop"] == 205)
        #expect(diagnostics.understood["virtio_set_status"] == 68)
        #expect(diagnostics.ignored["vtd_reg_write"] == 869)
        #expect(diagnostics.skipped == 0, "\(diagnostics.problems)")
        #expect(diagnostics.unknown.isEmpty)
        // every one of the 19066 lines is accounted for
        let accounted = diagnostics.totalUnderstood + diagnostics.ignored.values.reduce(0, +) + diagnostics.comments
        #expect(accounted == 19066)
        #expect(buffer.events.filter { $0.kind == .hostFault }.count == 96)
        #expect(buffer.events.filter { $0.kind == .hostTranslate }.count == 3574)
        #expect(buffer.metadata.capture.viommu == "intel-iommu")

        // The two fault bursts of 00:05.0 (sid 0x28) as QEMU recorded them.
        let faults = buffer.events.filter { $0.kind == .hostFault }
        let first = try #require(faults.first)
        #expect(first.address == 0x100_0000)
        #expect(first.aux == 6)
        #expect(!first.eventFlags.contains(.write))
        #expect(first.detail == FaultSource.vtd.rawValue)
        #expect(first.position == 10569)
        #expect(first.timestamp == 1_795_570_159_295_951_000)
        #expect(first.source == 1 && first.clock == 2)
        let write = try #require(faults.first { $0.aux == 5 })
        #expect(write.address == 0x234_5000)
        #expect(write.eventFlags.contains(.write))
        #expect(write.position == 10708)
        #expect(faults.filter { $0.aux == 6 }.count == 64)
        #expect(faults.filter { $0.aux == 5 }.count == 32)
        let device = try #require(buffer.metadata.devices[Int(first.device)] as DeviceInfo?)
        #expect(device.name == "0000:00:05.0")
        #expect(device.sid == 0x28)
        #expect(faults.allSatisfy { $0.device == first.device })
    }

    @Test func translateTakesPermissionsAndDomainFromTheIOTLBLine() throws {
        let log = """
            6133@1795570155.290721:vtd_iotlb_page_update IOTLB page update sid 0x10 iova 0xffffd002 slpte 0x4202003 domain 0x4
            6133@1795570155.290726:vtd_dmar_translate dev 00:02.00 iova 0xffffd000 -> gpa 0x4202000 mask 0xfff
            """
        let (buffer, diagnostics) = try importLog(log)
        #expect(diagnostics.understood == ["vtd_iotlb_page_update": 1, "vtd_dmar_translate": 1])
        #expect(buffer.events.count == 2)
        let update = buffer.events[0]
        #expect(update.kind == .hostIotlbUpdate)
        #expect(update.address == 0xffff_d002)
        #expect(update.address2 == 0x420_2002)
        #expect(update.aux == 4)
        #expect(update.detail == Permissions([.read, .write]).rawValue)
        let t = buffer.events[1]
        #expect(t.kind == .hostTranslate)
        #expect(t.address == 0xffff_d000)
        #expect(t.address2 == 0x420_2000)
        #expect(t.size == 0x1000)
        #expect(t.aux == 4)
        #expect(t.detail == 3)
        #expect(t.timestamp == 1_795_570_155_290_726_000)
        #expect(t.position == 2)
        #expect(buffer.metadata.devices.map(\.name) == ["0000:00:02.0"])
        #expect(buffer.metadata.devices[0].sid == 0x10)
    }

    @Test func syntheticExcerptWithAndWithoutTimestamps() throws {
        let (timed, d1) = try importLog(try BinFixtures.bytes("synthetic/qemu-7.2-log-backend-vtd-virtio.log"))
        let (bare, d2) = try importLog(
            try BinFixtures.bytes("synthetic/qemu-7.2-log-backend-vtd-virtio.no-timestamp.log"))
        #expect(d1.skipped == 0 && d2.skipped == 0)
        #expect(d1.understood == d2.understood)
        #expect(d1.ignored == d2.ignored)
        #expect(d1.understood["vtd_dmar_fault"] == 15)
        #expect(timed.events.count == bare.events.count)
        #expect(bare.events.allSatisfy { $0.timestamp == 0 })
        #expect(timed.events.allSatisfy { $0.timestamp > 1_795_570_000_000_000_000 })
        // Same events apart from the time.
        #expect(
            zip(timed.events, bare.events).allSatisfy { a, b in
                var a = a
                a.timestamp = 0
                return a == b
            })
    }

    @Test func isoPrefixesAndErrorReport() throws {
        let stderr = try BinFixtures.bytes("real/intel-viommu-strict/qemu-stderr.txt")
        let (buffer, diagnostics) = try importLog(stderr, path: "qemu-stderr.txt")
        #expect(diagnostics.skipped == 0)
        #expect(diagnostics.understood == ["error_report:vtd_iommu_translate": 1])
        #expect(diagnostics.ignored == ["error_report:vtd_iova_to_slpte": 1, "error_report": 1])
        let fault = try #require(buffer.events.first)
        #expect(buffer.events.count == 1)
        #expect(fault.kind == .hostFault)
        #expect(fault.address == 0x100_0000)
        #expect(!fault.eventFlags.contains(.write))
        #expect(buffer.metadata.devices[Int(fault.device)].name == "0000:00:05.0")
        // 2026-11-25T01:29:19.295981Z
        #expect(fault.timestamp == 1_795_570_159_295_981_000)

        let iso = "2026-11-25T01:29:19.295951Z (6133) vtd_dmar_fault sid 0x28 fault 5 addr 0x2345000 write 1\n"
        let (b2, d2) = try importLog(iso)
        #expect(d2.understood == ["vtd_dmar_fault": 1])
        #expect(b2.events.first?.timestamp == 1_795_570_159_295_951_000)
        #expect(b2.events.first?.eventFlags.contains(.write) == true)
        #expect(b2.events.first?.aux == 5)
    }

    @Test func otherFamilies() throws {
        let log = """
            amdvi_translation_result devid: 00:06.0 gpa 0x1000000 hpa 0x0
            amdvi_cache_update  update iotlb domid 0x2 devid: 00:03.0 gpa 0xfffff000 hpa 0x4282000
            smmuv3_translate_abort smmuv3-iommu-memory-region-0-16 sid=0x10 abort on iova:0x8000 is_write=1
            virtio_iommu_report_fault FAULT reason=1 flags=2 endpoint=8 address =0x4000
            virtqueue_pop vq 0x7f6696862010 elem 0x56074d82fa80 in_num 2 out_num 1
            virtqueue_fill vq 0x7f6696862010 elem 0x56074d82fa80 len 4097 idx 0
            virtio_queue_notify vdev 0x56074c410f20 n 0 vq (nil)
            some_other_event x 1
            """
        let (buffer, diagnostics) = try importLog(log)
        #expect(diagnostics.skipped == 0, "\(diagnostics.problems)")
        #expect(diagnostics.unknown == ["some_other_event": 1])
        // amdvi_translation_result with hpa 0x0: QEMU 7.2's page walk stopped on a zero PTE (IOMMU_NONE), a
        // blocked access with no amdvi_page_fault: recorded as a host fault IO_PAGE_FAULT (0x2) from AMD-Vi.
        #expect(
            buffer.events.map(\.kind) == [
                .hostFault, .hostIotlbUpdate, .hostFault, .hostFault, .virtqueuePop, .virtqueueFill, .virtqueueNotify
            ])
        #expect(buffer.events[0].address == 0x100_0000 && buffer.events[0].address2 == 0)
        #expect(buffer.events[0].aux == 2 && buffer.events[0].detail == FaultSource.amdvi.rawValue)
        #expect(buffer.events[1].aux == 2 && buffer.events[1].address2 == 0x428_2000)
        #expect(buffer.events[2].detail == FaultSource.smmuv3.rawValue && buffer.events[2].eventFlags.contains(.write))
        #expect(buffer.events[3].detail == FaultSource.virtioIOMMU.rawValue && buffer.events[3].aux == 1)
        #expect(buffer.events[4].address == 0x7f66_9686_2010 && buffer.events[4].aux == 2 && buffer.events[4].aux2 == 1)
        #expect(buffer.events[5].size == 4097)
        #expect(buffer.events[6].address2 == 0)
        #expect(buffer.metadata.devices.map(\.name) == ["0000:00:06.0", "0000:00:03.0", "0000:00:02.0", "0000:00:01.0"])
        #expect(buffer.metadata.capture.viommu == "amd-iommu")
    }

    /// Linux 5.10 on QEMU 7.2's amd-iommu invalidates every one of the 65,536 device-table entries at init
    /// (traces/raw/linux5.10-amd-viommu: `amdvi_devtab_inval device table entry for devid: 00:00.1
    /// invalidated` for every devid). A context invalidation carries the sid in `aux` and names a device only
    /// once another event showed that the device exists: one device here, not 65,536 (which overflowed the
    /// 16-bit device index into ``Event/noDevice`` and took minutes to register one by one).
    @Test func deviceTableInvalidationsDoNotRegisterDevices() throws {
        func h2(_ v: Int) -> String { let s = String(v, radix: 16); return s.count < 2 ? "0" + s : s }
        var lines = ["amdvi_translation_result devid: 00:05.0 gpa 0x1000000 hpa 0x0"]
        for sid in 0...0xFFFF {
            lines.append(
                "amdvi_devtab_inval device table entry for devid: \(h2(sid >> 8)):\(h2((sid >> 3) & 0x1F)).\(sid & 7) invalidated"
            )
        }
        lines.append("vtd_inv_desc_cc_device context invalidate device 00:05.00")
        let (buffer, diagnostics) = try importLog(lines.joined(separator: "\n") + "\n")
        #expect(diagnostics.skipped == 0, "\(diagnostics.problems.prefix(3))")
        #expect(buffer.metadata.devices.map(\.name) == ["0000:00:05.0"])
        let inval = buffer.events.filter { $0.kind == .hostInvalidate }
        #expect(inval.count == 0x10001)
        #expect(inval.allSatisfy { $0.aux2 == HostInvalidation.contextDevice.rawValue })
        #expect(inval.prefix(0x10000).map(\.aux) == (0...0xFFFF).map { UInt32($0) })
        // the twin: the invalidations of the one known device (sid 0x28) still name it, the others none
        let named = inval.filter(\.hasDevice)
        #expect(named.count == 2 && named.allSatisfy { $0.aux == 0x28 && $0.device == 0 })
    }

    @Test func malformedLinesAreReportedWithFileAndLine() throws {
        let log =
            "vtd_dmar_fault sid 0x28 fault 6 addr 0x1000000 write 0\nvtd_dmar_fault sid zz fault\n\u{1}\u{2}binary\u{0}junk\n\nvtd_dmar_translate dev 00:02.00 iova 0xffffd000 -> gpa\n"
        let (buffer, diagnostics) = try importLog(log, path: "bad.log")
        #expect(buffer.events.count == 1)
        #expect(diagnostics.skipped == 3)
        #expect(diagnostics.comments == 1)
        #expect(
            diagnostics.problems.map(\.description) == [
                "bad.log:2: vtd_dmar_fault: arguments do not match the format \"sid 0x%x fault %d addr 0x%x write %d\"",
                "bad.log:3: not a QEMU trace line: \"\u{1}\u{2}binary\u{0}junk\"",
                "bad.log:5: vtd_dmar_translate: arguments do not match the format \"dev %02x:%02x.%02x iova 0x%x -> gpa 0x%x mask 0x%x\""
            ])
    }

    @Test func sniffing() throws {
        func score(_ s: String) -> Int { Array(s.utf8).withUnsafeBytes { QEMULogImporter.sniff($0) } }
        #expect(
            score(
                "6133@1795570147.720193:vtd_context_cache_reset \n6133@1795570147.720829:vtd_switch_address_space Device 00:00.0 switching address space (iommu enabled=0)\n"
            ) == 95)
        #expect(
            score(
                "2026-11-25T01:29:19.295555Z qemu-system-x86_64: New fault is not recorded due to compression of faults\n"
            ) == 90)
        #expect(score("vtd_dmar_fault sid 0x28 fault 6 addr 0x1000000 write 0\n") == 60)
        #expect(score("  dd-156 [001] 16.155120: map: IOMMU: iova=0x1\n") == 0)
        #expect(score("[    7.304746] DMAR: [DMA Read NO_PASID] Request device [00:05.0]\n") == 0)
        let dat = try BinFixtures.bytes("real/intel-viommu-strict/guest-trace-cmd-v7-zstd.dat")
        #expect(dat.withUnsafeBytes { QEMULogImporter.sniff(UnsafeRawBufferPointer(rebasing: $0[0..<4096])) } == 0)
    }

    /// Overwritten bytes, cut lines and binary noise: lines are skipped with their number, nothing traps.
    @Test func damagedLogsNeverTrap() throws {
        let excerpt = try BinFixtures.bytes("synthetic/qemu-7.2-log-backend-vtd-virtio.log")
        let clean = try importLog(excerpt).1
        var state: UInt64 = 7
        for round in 0..<100 {
            var damaged = excerpt
            for _ in 0..<(1 + round % 16) {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                damaged[Int((state >> 33) % UInt64(damaged.count))] = UInt8(truncatingIfNeeded: state >> 11)
            }
            let cut = Int((state >> 20) % UInt64(damaged.count))
            let (_, d) = try importLog(Array(damaged[0..<cut]) + [0x0A] + damaged, path: "fuzz.log")
            #expect(d.problems.allSatisfy { !$0.isByteOffset && $0.file == "fuzz.log" && $0.position >= 1 })
        }
        #expect(clean.skipped == 0)
    }
}
