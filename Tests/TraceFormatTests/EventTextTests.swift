import Testing
@testable import TraceFormat

/// `cat`'s byte writer writes numbers exactly as `String(v)` and ``Hex/prefixed(_:width:)`` do (a property test
/// over boundaries and a pseudo-random sample), and a line exactly as the string form of it.
@Suite struct EventTextTests {
    static func bytes(_ f: (inout [UInt8]) -> Void) -> String {
        var b: [UInt8] = []
        f(&b)
        return String(decoding: b, as: UTF8.self)
    }

    @Test func numbersAreWrittenAsSwiftWritesThem() {
        var rng = SplitMix64(seed: 7)
        var values: [UInt64] = [
            0, 1, 9, 10, 15, 16, 99, 100, 0xFFF, 0x1000, UInt64(UInt32.max), UInt64.max, UInt64.max - 1
        ]
        for _ in 0..<2000 { values.append(rng.next() >> (rng.next() % 64)) }
        for v in values {
            #expect(Self.bytes { EventText.decimal(v, &$0) } == String(v))
            #expect(Self.bytes { EventText.hex(v, &$0) } == Hex.prefixed(v))
        }
        // Twin: a different number is written differently.
        #expect(Self.bytes { EventText.decimal(10, &$0) } != String(1))
    }

    @Test func aLineIsTheSameAsBytesAndAsAString() {
        var m = TraceMetadata()
        _ = m.devices.register(DeviceInfo(name: "0000:00:02.0"))
        m.inputs = [InputFile(path: "trace.txt", format: "ftrace", positionUnit: .line)]
        let e = Event(
            kind: .dmaMap, timestamp: 1500, device: 0, direction: .toDevice, flags: [.aligned], address: 0xffffb640,
            address2: 0x429e640, size: 16, aux2: 0, clock: 1, source: 0, position: 42)
        let line = EventText.line(e, metadata: m, string: { _ in nil })
        #expect(
            line
                == "1500@1 dma_map 0000:00:02.0 dir=TO_DEVICE dma_addr=0xffffb640 phys_addr=0x429e640 size=16 attrs=0x0 sg_index=0 api=page flags=aligned src=trace.txt:42"
        )
        var other = e
        other.timestamp = 1501
        #expect(EventText.line(other, metadata: m, string: { _ in nil }) != line)
    }
}
