import DMATraceTestSupport
import Testing
@testable import TraceIngest
import TraceFormat

/// Fixture access for the binary and QEMU importer tests (files under Tests/Fixtures).
enum BinFixtures {
    static func url(_ relative: String) -> String { Fixtures.path(relative) }

    /// The raw bytes of a fixture file.
    static func bytes(_ relative: String) throws -> [UInt8] {
        let path = url(relative)
        guard let f = fopen(path, "rb") else { throw FixtureError.missing(path) }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    /// A fixture's bytes, zstd-decompressed when the name ends in `.zst`.
    static func content(_ relative: String) throws -> [UInt8] {
        let raw = try bytes(relative)
        guard relative.hasSuffix(".zst") else { return raw }
        switch raw.withUnsafeBytes({ ZstdFrameDecoder.decompressStream($0, limit: 1 << 30) }) {
        case .success(let out): return out
        case .failure(let f): throw FixtureError.zstd(f.reason)
        }
    }

    static func text(_ relative: String) throws -> String {
        String(decoding: try content(relative), as: UTF8.self)
    }

    enum FixtureError: Error { case missing(String), zstd(String) }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
