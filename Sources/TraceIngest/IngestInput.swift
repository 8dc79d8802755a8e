import TraceFormat

/// One input of an ingest: its name and its (decompressed) bytes.
///
/// This first version reads a whole plain file into memory; decompression (zstd, gzip), stdin and streaming
/// line access for large text inputs come with the ingest layer.
public final class IngestInput {
    /// The path as given by the user (`-` for stdin); used in every diagnostic.
    public let path: String
    /// The whole decompressed content.
    public let bytes: [UInt8]

    /// Wraps bytes already in memory (tests, stdin).
    public init(path: String, bytes: [UInt8]) {
        self.path = path
        self.bytes = bytes
    }

    /// Calls `body` with each line (without its `\n` or `\r\n`) and its 1-based number.
    public func forEachLine(_ body: (UnsafeRawBufferPointer, UInt64) throws -> Void) rethrows {
        try bytes.withUnsafeBytes { all in
            var start = 0
            var line: UInt64 = 0
            let n = all.count
            while start < n {
                var end = start
                while end < n && all[end] != 0x0A { end += 1 }
                line += 1
                var stop = end
                if stop > start && all[stop - 1] == 0x0D { stop -= 1 }
                try body(UnsafeRawBufferPointer(rebasing: all[start..<stop]), line)
                start = end + 1
            }
        }
    }
}
