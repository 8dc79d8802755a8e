import Analysis
import Replay
import Testing
import TraceFormat

/// A `swiotlb_full` event of the guest log is a finding of its own, with its device and size.
@Suite struct RecordedLogFindingsTests {
    private func metadata() -> TraceMetadata {
        var m = TraceMetadata()
        m.devices = [DeviceInfo(name: "0000:01:00.0"), DeviceInfo(name: "0000:00:1d.2")]
        m.inputs = [InputFile(path: "guest-dmesg.txt", format: "dmesg", positionUnit: .line)]
        return m
    }

    private func full(_ dev: UInt16, size: UInt64, total: UInt32 = 32768, used: UInt32 = 32764, line: UInt64) -> Event {
        Event(
            kind: .swiotlbFull, timestamp: line * 1000, device: dev, flags: .error, size: size, aux: total, aux2: used,
            source: 0, position: line)
    }

    @Test func oneFindingPerDeviceWithSizeAndFirstAndWorst() throws {
        var r = RecordedLogFindings()
        r.consume(index: 0, full(0, size: 3776, line: 3))
        r.consume(index: 1, Event(kind: .guestLog, device: 0))
        r.consume(index: 2, full(0, size: 8192, line: 7))
        r.consume(index: 3, full(1, size: 4000, total: 0, used: 0, line: 9))
        let f = r.findings(trace: "/tmp/cvm.dmat", metadata: metadata())
        #expect(f.map(\.device) == ["0000:00:1d.2", "0000:01:00.0"])
        let a = try #require(f.last)
        #expect(a.category == "swiotlb-full" && a.origin == .guestLog && a.severity == .error && a.count == 2)
        #expect(a.first?.size == 3776 && a.first?.sourceFile == "guest-dmesg.txt" && a.first?.sourcePosition == 3)
        #expect(a.worst?.size == 8192 && a.worst?.eventIndex == 2)
        #expect(a.message.contains("3776 bytes") && a.message.contains("32764 of 32768 slots"))
        #expect(
            a.guestLog.contains(
                "0000:01:00.0: swiotlb buffer is full (sz: 3776 bytes), total 32768 (slots), used 32764 (slots)"))
        // Without slot counts (4.x), the log line says only the size.
        #expect(f[0].guestLog == ["0000:00:1d.2: swiotlb buffer is full (sz: 4000 bytes)"])
        #expect(f[0].worst == nil)
    }

    /// Twin: other kinds (a DMA fault, a map error) make no swiotlb finding.
    @Test func otherKindsMakeNone() {
        var r = RecordedLogFindings()
        r.consume(index: 0, Event(kind: .guestFault, device: 0, address: 0x1000, aux: 6))
        r.consume(index: 1, Event(kind: .dmaMapError, device: 0, flags: .error, size: 4096))
        #expect(r.findings(trace: "t.dmat", metadata: metadata()).isEmpty)
    }
}
