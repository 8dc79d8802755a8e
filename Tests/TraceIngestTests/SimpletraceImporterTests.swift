import Testing
@testable import TraceIngest
import TraceFormat

private func importSimpletrace(_ bytes: [UInt8], events: QEMUTraceEvents?, path: String = "trace-6133")
    throws -> (EventBuffer, IngestDiagnostics)
{
    var importer = events.map { SimpletraceImporter(traceEvents: $0) } ?? SimpletraceImporter()
    var sink = EventBuffer()
    var diagnostics = IngestDiagnostics()
    try importer.run(IngestInput(path: path, bytes: bytes), source: 4, clock: 1, into: &sink, diagnostics: &diagnostics)
    return (sink, diagnostics)
}

@Suite struct SimpletraceImporterTests {
    static func sample() throws -> ([UInt8], QEMUTraceEvents) {
        let bin = try BinFixtures.bytes("synthetic/qemu-simpletrace-v4-sample.bin")
        let events = QEMUTraceEvents(bytes: try BinFixtures.bytes("synthetic/simpletrace-trace-events.txt"))
        return (bin, events)
    }

    @Test func traceEventsFileParses() throws {
        let (_, events) = try Self.sample()
        #expect(events.definitions.count == 19)
        #expect(events.malformedLines.isEmpty)
        let inv = try #require(events["vtd_inv_desc"])
        #expect(inv.arguments.map(\.name) == ["type", "hi", "lo"])
        #expect(inv.arguments.map(\.isString) == [true, false, false])
        #expect(inv.format == "invalidate desc type %s high 0x%x low 0x%x")
        let fill = try #require(events["virtqueue_fill"])
        #expect(fill.arguments.map(\.isString) == [false, false, false, false])  // const void * is no string
        #expect(events["vtd_fault_disabled"]?.arguments.isEmpty == true)
    }

    @Test func sampleDecodes() throws {
        let (bin, events) = try Self.sample()
        let (buffer, diagnostics) = try importSimpletrace(bin, events: events)
        #expect(diagnostics.skipped == 0, "\(diagnostics.problems)")
        #expect(
            diagnostics.understood == [
                "vtd_switch_address_space": 1, "virtio_set_status": 5, "virtio_queue_notify": 1,
                "vtd_iotlb_page_update": 3, "vtd_dmar_translate": 4, "virtqueue_pop": 1, "vtd_iotlb_page_hit": 1,
                "virtqueue_fill": 1, "virtqueue_flush": 1, "virtio_notify": 1, "vtd_inv_desc_iotlb_pages": 1,
                "vtd_dmar_fault": 4, "vtd_iotlb_reset": 1, "dropped": 1
            ])
        #expect(
            diagnostics.ignored == [
                "virtio_blk_handle_read": 1, "virtio_blk_req_complete": 1, "vtd_inv_desc": 2, "vtd_frr_new": 1,
                "vtd_fsts_ppf": 1, "vtd_fault_disabled": 1
            ])
        #expect(diagnostics.totalUnderstood + diagnostics.ignored.values.reduce(0, +) == 33)
        #expect(diagnostics.lostEvents == 37)
        #expect(buffer.events.count == 26)
        #expect(buffer.events.first?.timestamp == 812_345_678_901)
        #expect(buffer.events.allSatisfy { $0.source == 4 && $0.clock == 1 })

        let faults = buffer.events.filter { $0.kind == .hostFault }
        #expect(faults.map(\.address) == [0x100_0000, 0x100_0004, 0x100_0008, 0x234_5000])
        #expect(faults.map(\.aux) == [6, 6, 6, 5])
        #expect(faults.map { $0.eventFlags.contains(.write) } == [false, false, false, true])
        #expect(faults[0].timestamp == 816_343_255_552)
        #expect(faults[0].position == 2176)
        #expect(buffer.metadata.devices[Int(faults[0].device)].name == "0000:00:05.0")
        #expect(buffer.metadata.devices[Int(faults[0].device)].sid == 0x28)

        let lost = try #require(buffer.events.first { $0.kind == .lostEvents })
        #expect(lost.aux == 37)
        let translate = try #require(buffer.events.first { $0.kind == .hostTranslate })
        #expect(translate.address == 0xffff_d000 && translate.address2 == 0x420_2000 && translate.size == 0x1000)
        #expect(translate.aux == 4 && translate.detail == 3)
        let pop = try #require(buffer.events.first { $0.kind == .virtqueuePop })
        #expect(pop.address == 0x7f66_9686_2010 && pop.address2 == 0x5607_4d82_fa80 && pop.aux == 2 && pop.aux2 == 1)
        let inval = try #require(
            buffer.events.first { $0.kind == .hostInvalidate && $0.aux2 == HostInvalidation.iotlbPages.rawValue })
        #expect(inval.address == 0xffff_b000 && inval.size == 4096 && inval.aux == 4)
        #expect(buffer.metadata.capture.viommu == "intel-iommu")
    }

    /// The log and simpletrace importers share one mapping: the same QEMU event gives the same Event.
    @Test func sameMappingAsTheLogImporter() throws {
        let (bin, events) = try Self.sample()
        let (st, _) = try importSimpletrace(bin, events: events)
        let log =
            "vtd_dmar_fault sid 0x28 fault 5 addr 0x2345000 write 1\nvtd_dmar_translate dev 00:02.00 iova 0xffffb000 -> gpa 0x4282000 mask 0xfff\n"
        var sink = EventBuffer()
        var diagnostics = IngestDiagnostics()
        var importer = QEMULogImporter()
        try importer.run(
            IngestInput(path: "l", bytes: Array(log.utf8)), source: 4, clock: 1, into: &sink, diagnostics: &diagnostics)
        func strip(_ e: Event) -> Event {
            var e = e
            e.timestamp = 0
            e.position = 0
            e.device = 0
            return e
        }
        let stFault = try #require(st.events.first { $0.kind == .hostFault && $0.aux == 5 })
        #expect(strip(stFault) == strip(sink.events[0]))
        let stTranslate = try #require(st.events.first { $0.kind == .hostTranslate && $0.address == 0xffff_b000 })
        var logTranslate = sink.events[1]
        logTranslate.detail = stTranslate.detail  // the log excerpt has no IOTLB line before it
        logTranslate.aux = stTranslate.aux
        #expect(strip(stTranslate) == strip(logTranslate))
    }

    @Test func missingTraceEventsIsAMissingCompanionError() throws {
        let (bin, _) = try Self.sample()
        #expect(
            throws: IngestError.missingCompanion(
                path: "trace-6133",
                what: "simpletrace needs the trace-events-all file of the QEMU that wrote it (--trace-events FILE)")
        ) {
            _ = try importSimpletrace(bin, events: nil)
        }
    }

    @Test func sniffing() throws {
        let (bin, _) = try Self.sample()
        #expect(bin.withUnsafeBytes { SimpletraceImporter.sniff($0) } == 100)
        #expect(
            Array("vtd_dmar_fault sid 0x28 fault 6 addr 0x1000000 write 0\n".utf8).withUnsafeBytes {
                SimpletraceImporter.sniff($0)
            } == 0)
        let dat = try BinFixtures.bytes("real/intel-viommu-strict/guest-trace-cmd-v7-zstd.dat")
        #expect(dat.withUnsafeBytes { SimpletraceImporter.sniff($0) } == 0)
    }

    @Test func badHeaderAndVersion() throws {
        let (bin, events) = try Self.sample()
        #expect(throws: IngestError.truncated(path: "t", offset: 0, reason: "simpletrace header needs 8 bytes")) {
            _ = try importSimpletrace(Array(bin[0..<5]), events: events, path: "t")
        }
        #expect(
            throws: IngestError.badFormat(
                path: "t", offset: 0,
                reason: "not a QEMU simpletrace file (header event id and magic 0xf2b177cb0aa429b4 missing)")
        ) {
            _ = try importSimpletrace(Array(repeating: 0x41, count: 64), events: events, path: "t")
        }
        var v3 = bin
        v3[16] = 3
        #expect(
            throws: IngestError.badFormat(
                path: "t", offset: 16, reason: "simpletrace log version 3 is not supported (4 is)")
        ) {
            _ = try importSimpletrace(v3, events: events, path: "t")
        }
    }

    @Test func truncatedAndDamagedFiles() throws {
        let (bin, events) = try Self.sample()
        // Cut inside the first vtd_dmar_fault record (at byte 2176): everything before it, one problem there.
        let (buffer, diagnostics) = try importSimpletrace(Array(bin[0..<2190]), events: events, path: "t")
        #expect(buffer.events.filter { $0.kind == .hostFault }.isEmpty)
        #expect(buffer.events.count == 20)
        #expect(diagnostics.problems.map(\.description) == ["t: byte 2176: truncated event record header"])
        // Every prefix and many overwritten bytes: an error or a partial result, never a trap.
        for cut in 0..<bin.count { _ = try? importSimpletrace(Array(bin[0..<cut]), events: events) }
        var state: UInt64 = 42
        for _ in 0..<2000 {
            var damaged = bin
            for _ in 0..<4 {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                damaged[Int((state >> 33) % UInt64(bin.count))] = UInt8(truncatingIfNeeded: state >> 13)
            }
            _ = try? importSimpletrace(damaged, events: events)
        }
    }
}

@Suite struct QEMUTraceEventsParsingTests {
    @Test func definitionsAndMalformedLines() {
        let text = """
            # comment
            disable vtd_dmar_fault(uint16_t sid, int fault, uint64_t addr, bool is_write) "sid 0x%"PRIx16" fault %d addr 0x%"PRIx64" write %d"
            x86_iommu_iec_notify(bool global, uint32_t index, uint32_t mask) "Notify IEC invalidation: global=%d index=%" PRIu32 " mask=%" PRIu32
            broken(int x
            unterminated(int x) "abc
            nofmt(int x)
            odd(int) "%d"

            """
        let events = QEMUTraceEvents(text: text)
        #expect(events.definitions.keys.sorted() == ["vtd_dmar_fault", "x86_iommu_iec_notify"])
        #expect(events.malformedLines == [4, 5, 6, 7])
        #expect(events["x86_iommu_iec_notify"]?.format == "Notify IEC invalidation: global=%d index=%u mask=%u")
        #expect(events["vtd_dmar_fault"]?.arguments.map(\.name) == ["sid", "fault", "addr", "is_write"])
    }

    /// Arbitrary text never traps the definition parser or the format matcher.
    @Test func garbageNeverTraps() {
        var state: UInt64 = 99
        let alphabet = Array("ab_(),\" %0x#*.lzdusp*PRIx64\n\\".utf8)
        for _ in 0..<2000 {
            var bytes: [UInt8] = []
            for _ in 0..<60 {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                bytes.append(alphabet[Int((state >> 33) % UInt64(alphabet.count))])
            }
            let events = QEMUTraceEvents(bytes: bytes)
            for d in events.definitions.values {
                _ = bytes.withUnsafeBytes { QEMUEventArguments.parse($0, definition: d) }
            }
        }
    }
}
