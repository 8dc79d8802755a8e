import Foundation
import Testing
@testable import TraceFormat

@Suite struct ZstdTests {
    static func sample(_ n: Int) -> [UInt8] {
        var rng = SplitMix64(seed: 7)
        return (0..<n).map { i in UInt8(truncatingIfNeeded: i % 7 == 0 ? rng.next() : UInt64(i / 13)) }
    }

    static func compress(_ data: [UInt8], workers: Int32 = 0) throws -> [UInt8] {
        let c = try ZstdCompressor(level: 3, workers: workers)
        var out = [UInt8](repeating: 0, count: ZstdCompressor.bound(data.count))
        let n = try data.withUnsafeBytes { src in try out.withUnsafeMutableBytes { try c.compressFrame(src, into: $0) }
        }
        return Array(out[..<n])
    }

    @Test func frameCarriesContentSizeAndChecksumAndRoundTrips() throws {
        let data = Self.sample(3 << 20)
        for workers: Int32 in [0, 2] {
            let frame = try Self.compress(data, workers: workers)
            #expect(frame.withUnsafeBytes { ZstdDecompressor.declaredContentSize($0) } == UInt64(data.count))
            #expect(frame[4] & 0x04 != 0, "Content_Checksum_flag")  // frame header descriptor bit 2
            #expect(frame.withUnsafeBytes { ZstdDecompressor.frameSize($0) } == frame.count)
            let d = try ZstdDecompressor()
            var out = [UInt8](repeating: 0, count: data.count)
            let n = try frame.withUnsafeBytes { f in
                try out.withUnsafeMutableBytes { try d.decompressFrame(f, into: $0, limit: data.count) }
            }
            #expect(n == data.count && out == data)
        }
    }

    /// TraceWriter relies on this: output bytes do not depend on how many workers the machine gets.
    @Test func sameBytesForAnyWorkerCountFromOne() throws {
        let data = Self.sample(3_670_016)
        let one = try Self.compress(data, workers: 1)
        #expect(try Self.compress(data, workers: 2) == one)
        #expect(try Self.compress(data, workers: 4) == one)
    }

    @Test func oneShotRefusesALimitBeforeDecompressing() throws {
        let data = Self.sample(100_000)
        let frame = try Self.compress(data)
        let d = try ZstdDecompressor()
        var out = [UInt8](repeating: 0, count: data.count)
        #expect(throws: ZstdError.contentSizeTooLarge(declared: 100_000, limit: 99_999)) {
            try frame.withUnsafeBytes { f in
                try out.withUnsafeMutableBytes { _ = try d.decompressFrame(f, into: $0, limit: 99_999) }
            }
        }
        #expect(throws: ZstdError.truncatedFrame) {
            try frame.withUnsafeBytes { f in
                try out.withUnsafeMutableBytes {
                    _ = try d.decompressFrame(
                        UnsafeRawBufferPointer(rebasing: f.dropLast(10)), into: $0, limit: data.count)
                }
            }
        }
    }

    @Test func streamingDetectsATruncatedFrameAndReadsConcatenatedFrames() throws {
        let a = Self.sample(500_000), b = Self.sample(70_000)
        let stream = try Self.compress(a) + Self.compress(b)
        let d = try ZstdDecompressor()
        func run(_ input: [UInt8]) throws -> [UInt8] {
            var at = 0
            var out: [UInt8] = []
            try d.decompressStream(
                read: { buf in
                    let n = min(buf.count, input.count - at, 4096)
                    input.withUnsafeBytes { src in
                        buf.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[at..<at + n]))
                    }
                    at += n
                    return n
                }, sink: { out.append(contentsOf: $0) })
            return out
        }
        #expect(try run(stream) == a + b)
        for cut in [stream.count - 1, stream.count - 5000, 100] {
            #expect(throws: ZstdError.truncatedFrame) { _ = try run(Array(stream[..<cut])) }
        }
        // The decompressor is reusable after an error.
        #expect(try run(stream) == a + b)
    }
}
