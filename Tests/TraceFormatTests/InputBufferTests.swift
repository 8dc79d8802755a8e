import Foundation
import SystemPackage
import Testing
@testable import TraceFormat

/// The read window: buffered reads, direct reads into a caller's buffer (the decode pool's slots), skips,
/// and the end of input, all keeping ``InputBuffer/position`` exact.
@Suite struct InputBufferTests {
    /// Bytes with no short period, so a read from the wrong offset cannot match.
    static func bytes(_ n: Int) -> [UInt8] {
        (0..<n).map { UInt8(truncatingIfNeeded: (UInt64($0) &* 0x9E37_79B9_7F4A_7C15) >> 56) }
    }

    @Test func directReadsInterleaveWithTheWindow() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("in.bin").path
        let data = Self.bytes(3 << 20)
        try Data(data).write(to: URL(fileURLWithPath: path))
        let input = InputBuffer(
            fd: try FileDescriptor.open(path, .readOnly), path: path, seekable: true, ownsDescriptor: true)
        input.readAhead = 1 << 16

        #expect(try input.fill(100))
        #expect(Array(input.current.prefix(100)) == Array(data[0..<100]))
        input.advance(10)
        // Partly from the window (what read-ahead brought in), the rest straight from the file.
        let big = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { big.deallocate() }
        #expect(try input.read(into: big) == 1 << 20)
        #expect(Array(big) == Array(data[10..<(10 + (1 << 20))]))
        #expect(input.position == 10 + (1 << 20))
        // The window restarts where the direct read ended.
        #expect(try input.fill(8))
        #expect(Array(input.current.prefix(8)) == Array(data[(10 + (1 << 20))..<(18 + (1 << 20))]))
        // A read that fits in the window is a copy from it.
        let small = UnsafeMutableRawBufferPointer.allocate(byteCount: 5, alignment: 1)
        defer { small.deallocate() }
        #expect(try input.read(into: small) == 5)
        #expect(Array(small) == Array(data[(10 + (1 << 20))..<(15 + (1 << 20))]))
        #expect(try input.skip(1 << 20))
        let at = 15 + (2 << 20)
        #expect(input.position == UInt64(at))
        // Past the end: what is left, then the end of input.
        #expect(try input.read(into: big) == data.count - at)
        #expect(Array(big.prefix(data.count - at)) == Array(data[at...]))
        #expect(input.position == UInt64(data.count))
        #expect(input.atEOF)
        #expect(try input.read(into: small) == 0)
        #expect(try !input.fill(1))
    }
}
