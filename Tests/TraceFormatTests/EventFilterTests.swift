import Foundation
import Testing
import TraceFormat

/// `--device`, `--kind`, `--from`, `--to` as `cat` and `export` take them.
@Suite struct EventFilterTests {
    static var metadata: TraceMetadata {
        var m = TraceMetadata()
        m.devices = [DeviceInfo(name: "0000:00:02.0"), DeviceInfo(name: "0000:00:05.0")]
        return m
    }

    @Test func timesParseAbsoluteAndRelative() {
        #expect(EventFilter.parseTime("1500") == .absolute(1500))
        #expect(EventFilter.parseTime("4.5us") == .absolute(4500))
        #expect(EventFilter.parseTime("+2s") == .relative(2_000_000_000))
        #expect(EventFilter.parseTime("+10ms") == .relative(10_000_000))
        #expect(EventFilter.parseTime("ten") == nil)
        #expect(EventFilter.parseTime("-5s") == nil)
        #expect(EventFilter.parseTime("+") == nil)
    }

    @Test func shortPCINamesResolveAndUnknownDevicesAreErrors() throws {
        #expect(try EventFilter.resolveDevices(["00:05.0"], in: Self.metadata, file: "t") == [1])
        #expect(try EventFilter.resolveDevices(["0000:00:02.0", "1"], in: Self.metadata, file: "t") == [0, 1])
        #expect(try EventFilter.resolveDevices(["00:05.0".uppercased()], in: Self.metadata, file: "t") == [1])
        #expect(
            throws: EventFilterError.unknownDevice(file: "t", name: "00:09.0", known: ["0000:00:02.0", "0000:00:05.0"])
        ) {
            try EventFilter.resolveDevices(["00:09.0"], in: Self.metadata, file: "t")
        }
        #expect(throws: EventFilterError.self) { try EventFilter.resolveDevices(["7"], in: Self.metadata, file: "t") }
        #expect(throws: EventFilterError.self) { try EventFilter.parseKinds(["dma_map,nonsense"]) }
    }

    /// Relative bounds count from the first event seen; the twin is the same window read as absolute, which
    /// keeps nothing of a trace that starts late.
    @Test func relativeWindowsCountFromTheFirstEvent() throws {
        let events = (0..<10).map {
            Event(kind: .dmaMap, timestamp: 1_000_000 + UInt64($0) * 100, device: UInt16($0 % 2), address: 0x1000)
        }
        var relative = EventFilter(from: EventFilter.parseTime("+200"), to: EventFilter.parseTime("+500"))
        #expect(events.filter { relative.matches($0) }.map(\.timestamp) == [1_000_200, 1_000_300, 1_000_400])
        var absolute = EventFilter(from: EventFilter.parseTime("200"), to: EventFilter.parseTime("500"))
        #expect(events.filter { absolute.matches($0) }.isEmpty)
        var device = EventFilter(devices: try EventFilter.resolveDevices(["00:05.0"], in: Self.metadata, file: "t"))
        #expect(events.filter { device.matches($0) }.count == 5)
        #expect(relative.absoluteRange == nil && absolute.absoluteRange! == (200, 500))
    }
    /// What `cat` prints (``TraceReader/forEachEvent(matching:_:)``): across chunks, the kinds, the absolute window
    /// (chunks outside it skipped undecoded) and the relative window (from the first event) a filter keeps; the
    /// twin: the empty filter keeps every event.
    @Test func aReaderYieldsWhatTheFilterKeeps() throws {
        var buffer = EventBuffer(metadata: Self.metadata)
        for i in 0..<100 {
            buffer.append(
                Event(
                    kind: i % 4 == 0 ? .iommuMap : .dmaMap, timestamp: 1_000 + UInt64(i) * 10, device: UInt16(i % 2),
                    address: 0x1000))
        }
        let path = try Fixtures.tempDir().appendingPathComponent("filtered.dmat").path
        try Fixtures.write(buffer, to: path, chunkEvents: 16)
        func read(_ filter: EventFilter) throws -> [UInt64] {
            var seen: [UInt64] = []
            try TraceReader(path: path).forEachEvent(matching: filter) { e, metadata in
                #expect(metadata.devices.count == 2)
                seen.append(e.timestamp)
            }
            return seen
        }
        #expect(try read(EventFilter()) == buffer.events.map(\.timestamp))
        #expect(try read(EventFilter(kinds: [.iommuMap])) == stride(from: 1_000, to: 2_000, by: 40).map(UInt64.init))
        #expect(
            try read(EventFilter(from: EventFilter.parseTime("1500"), to: EventFilter.parseTime("1600")))
                == stride(from: 1_500, to: 1_600, by: 10).map(UInt64.init))
        #expect(
            try read(EventFilter(from: EventFilter.parseTime("+200"), to: EventFilter.parseTime("+300")))
                == stride(from: 1_200, to: 1_300, by: 10).map(UInt64.init))
    }
}
