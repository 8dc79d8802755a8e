import TraceFormat

/// One input of an ingest: a file, stdin (`-`) or bytes in memory, transparently decompressed.
///
/// Compression is detected from the magic bytes, never from the file name: zstd (`28 b5 2f fd`, any number
/// of frames) and gzip (`1f 8b`, any number of members) are decompressed while streaming; xz, bzip2 and lz4
/// are recognised and refused with a clear message. Text importers stream lines through ``forEachLine(_:)``
/// (constant memory, so a 1 GB `trace` file does not need 1 GB of RAM); binary importers take the whole
/// content with ``readAll(limit:)``.
///
/// Files can be read any number of times (each pass reopens them). Stdin can be read once; the bytes
/// ``head(maxBytes:)`` pulled for sniffing are replayed at the start of that one pass.
///
/// Read errors that happen while streaming (a truncated zstd frame, an I/O error) end the pass early and are
/// kept in ``readError``: ``forEachLine(_:)`` only rethrows the errors of its body, so the ingest driver
/// calls ``checkReadError()`` after the importer ran.
public final class IngestInput {
    /// The path as given by the user (`-` for stdin); used in every diagnostic.
    public let path: String
    /// The compression found at the start of the input (known after the first read).
    public private(set) var compression: Compression?
    /// The first error met while streaming, if any (the pass ended there).
    public private(set) var readError: IngestError?
    /// Decompressed bytes delivered by the last complete or partial pass.
    public private(set) var bytesRead: UInt64 = 0

    /// How the input was compressed.
    public enum Compression: String, Sendable, Equatable {
        case none, zstd, gzip
    }

    private enum Origin {
        case memory([UInt8])
        case file
        case stdin
    }

    private let origin: Origin
    /// Stdin only: the decompressing pipeline, created once.
    private var stdinStream: ByteStream?
    /// Decompressed bytes pulled ahead for sniffing (stdin) and replayed before the rest.
    private var stdinHead: [UInt8] = []
    private var stdinConsumed = false
    private var cachedAll: [UInt8]?

    /// Size of one read from the decompressed stream while scanning lines: the longest line
    /// (``TextSafety/maxLineBytes``) with its `\r\n`. A longer line ends the pass with
    /// ``IngestError/limitExceeded`` in ``readError`` (every text importer refuses it the same way).
    public static let lineBufferSize = TextSafety.maxLineBytes + 2
    /// The default limit of ``readAll(limit:)`` and of ``bytes``.
    public static let defaultReadAllLimit: UInt64 = 4 << 30

    /// Wraps bytes already in memory (tests, stdin); they may be compressed.
    public init(path: String, bytes: [UInt8]) {
        self.path = path
        self.origin = .memory(bytes)
    }

    private init(path: String, origin: Origin) {
        self.path = path
        self.origin = origin
    }

    /// Opens a file, or stdin for `-`. The file is checked for readability now; its content is read lazily.
    public static func open(_ path: String) throws(IngestError) -> IngestInput {
        if path == "-" { return IngestInput(path: path, origin: .stdin) }
        _ = try FileStream.open(path)
        return IngestInput(path: path, origin: .file)
    }

    /// The whole decompressed content (read on first use, up to ``defaultReadAllLimit``; empty if the
    /// input cannot be read, with the reason in ``readError``). Prefer ``readAll(limit:)``, which throws.
    public var bytes: [UInt8] {
        if case .memory(let b) = origin, isPlain(b) { return b }
        if let c = cachedAll { return c }
        do {
            let all = try readAll(limit: Self.defaultReadAllLimit)
            cachedAll = all
            return all
        } catch {
            readError = error
            return []
        }
    }

    /// Throws the error that ended the last streaming pass early, if any.
    public func checkReadError() throws(IngestError) {
        if let e = readError { throw e }
    }

    // MARK: Pipelines

    /// True when in-memory bytes need no decompressor (and are not in a format we refuse).
    private func isPlain(_ b: [UInt8]) -> Bool {
        b.withUnsafeBytes {
            (Self.detect($0) ?? Compression.none) == Compression.none && Self.unsupportedCompression($0) == nil
        }
    }

    /// Compression from magic bytes; nil when the bytes are not enough to tell.
    static func detect(_ head: UnsafeRawBufferPointer) -> Compression? {
        if head.count >= 4 && head[0] == 0x28 && head[1] == 0xB5 && head[2] == 0x2F && head[3] == 0xFD { return .zstd }
        if head.count >= 2 && head[0] == 0x1F && head[1] == 0x8B { return .gzip }
        return head.count >= 4 ? Compression.none : nil
    }

    /// Magic numbers of compressors we recognise but do not decode.
    static func unsupportedCompression(_ head: UnsafeRawBufferPointer) -> String? {
        if head.count >= 6 && head[0] == 0xFD && head[1] == 0x37 && head[2] == 0x7A && head[3] == 0x58
            && head[4] == 0x5A && head[5] == 0x00
        {
            return "xz (decompress it first: xz -d)"
        }
        if head.count >= 4 && head[0] == 0x42 && head[1] == 0x5A && head[2] == 0x68 && head[3] >= 0x31
            && head[3] <= 0x39
        {
            return "bzip2 (decompress it first: bzip2 -d)"
        }
        if head.count >= 4 && head[0] == 0x04 && head[1] == 0x22 && head[2] == 0x4D && head[3] == 0x18 {
            return "lz4 (decompress it first: lz4 -d)"
        }
        return nil
    }

    /// Wraps a raw stream in the decompressor its first bytes call for.
    private func decompressing(_ raw: ByteStream) throws(IngestError) -> ByteStream {
        var magic = [UInt8](repeating: 0, count: 8)
        var have = 0
        while have < magic.count {
            let n = try Self.read(raw, into: &magic, at: have, count: magic.count - have)
            if n == 0 { break }
            have += n
        }
        magic.removeLast(magic.count - have)
        let replay = PrefixStream(prefix: magic, base: raw)
        let kind = magic.withUnsafeBytes { Self.detect($0) } ?? .none
        if let what = magic.withUnsafeBytes({ Self.unsupportedCompression($0) }) {
            throw .badFormat(path: path, offset: 0, reason: "compressed with \(what)")
        }
        compression = kind
        switch kind {
        case .none: return replay
        case .zstd: return try ZstdStream(base: replay, path: path)
        case .gzip: return try GzipStream(base: replay, path: path)
        }
    }

    /// A fresh decompressed stream over the whole input.
    private func openStream() throws(IngestError) -> ByteStream {
        switch origin {
        case .memory(let b): return try decompressing(MemoryStream(b))
        case .file: return try decompressing(FileStream.open(path))
        case .stdin:
            if stdinConsumed {
                throw .unreadable(path: path, reason: "standard input can be read only once")
            }
            stdinConsumed = true
            let s = try stdinPipeline()
            if stdinHead.isEmpty { return s }
            let head = stdinHead
            stdinHead = []
            return PrefixStream(prefix: head, base: s)
        }
    }

    private func stdinPipeline() throws(IngestError) -> ByteStream {
        if let s = stdinStream { return s }
        let s = try decompressing(FileStream(fd: 0, path: path, owns: false))
        stdinStream = s
        return s
    }

    // MARK: Reading

    /// Up to `maxBytes` of the decompressed start of the input, for sniffing. Does not consume stdin.
    public func head(maxBytes: Int = 64 * 1024) throws(IngestError) -> [UInt8] {
        if case .memory(let b) = origin, isPlain(b) { return Array(b.prefix(maxBytes)) }
        if case .stdin = origin {
            if stdinConsumed { throw .unreadable(path: path, reason: "standard input can be read only once") }
            if stdinHead.count < maxBytes {
                let s = try stdinPipeline()
                stdinHead += try Self.pull(s, upTo: maxBytes - stdinHead.count)
            }
            return Array(stdinHead.prefix(maxBytes))
        }
        return try Self.pull(openStream(), upTo: maxBytes)
    }

    /// Reads from `s` into `array[at..<at+count]` (typed throws, which `withUnsafeMutableBytes` lacks).
    private static func read(
        _ s: ByteStream, into array: inout [UInt8], at: Int, count: Int
    ) throws(IngestError) -> Int {
        var failure: IngestError?
        let n = array.withUnsafeMutableBytes { m -> Int in
            do throws(IngestError) {
                return try s.read(into: UnsafeMutableRawBufferPointer(rebasing: m[at..<(at + count)]))
            } catch {
                failure = error
                return 0
            }
        }
        if let failure { throw failure }
        return n
    }

    private static func pull(_ s: ByteStream, upTo limit: Int) throws(IngestError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: limit)
        var have = 0
        while have < limit {
            let n = try Self.read(s, into: &out, at: have, count: limit - have)
            if n == 0 { break }
            have += n
        }
        out.removeLast(limit - have)
        return out
    }

    /// The whole decompressed content; throws ``IngestError/limitExceeded(path:offset:what:value:limit:)``
    /// before holding more than `limit` bytes.
    public func readAll(limit: UInt64 = IngestInput.defaultReadAllLimit) throws(IngestError) -> [UInt8] {
        if case .memory(let b) = origin, isPlain(b) {
            if UInt64(b.count) > limit {
                throw .limitExceeded(path: path, offset: 0, what: "input size", value: UInt64(b.count), limit: limit)
            }
            return b
        }
        let s = try openStream()
        var out: [UInt8] = []
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { buf.deallocate() }
        while true {
            let n = try s.read(into: buf)
            if n == 0 { break }
            if UInt64(out.count + n) > limit {
                throw .limitExceeded(
                    path: path, offset: UInt64(out.count + n), what: "decompressed size", value: UInt64(out.count + n),
                    limit: limit)
            }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[..<n]))
        }
        bytesRead = UInt64(out.count)
        return out
    }

    /// Calls `body` with each decompressed chunk in order (chunk boundaries are arbitrary). A read error
    /// ends the pass and is kept in ``readError``.
    public func forEachChunk(_ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        readError = nil
        bytesRead = 0
        if case .memory(let b) = origin, isPlain(b) {
            bytesRead = UInt64(b.count)
            try b.withUnsafeBytes { try body($0) }
            return
        }
        let stream: ByteStream
        do { stream = try openStream() } catch { readError = error; return }
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.lineBufferSize, alignment: 64)
        defer { buf.deallocate() }
        while true {
            let n: Int
            do { n = try stream.read(into: buf) } catch { readError = error; return }
            if n == 0 { return }
            bytesRead += UInt64(n)
            try body(UnsafeRawBufferPointer(rebasing: buf[..<n]))
        }
    }

    /// Calls `body` with each line (without its `\n` or `\r\n`) and its 1-based number, streaming.
    /// A read error, or a line longer than ``TextSafety/maxLineBytes`` (the one line-length limit of every
    /// text importer), ends the pass and is kept in ``readError``. Inlined, so that each importer's line body is
    /// inlined into the scan instead of called through a closure context per line.
    @inline(__always)
    public func forEachLine(_ body: (UnsafeRawBufferPointer, UInt64) throws -> Void) rethrows {
        readError = nil
        bytesRead = 0
        var tooLong: (line: UInt64, offset: UInt64, length: Int)?
        defer {
            if let t = tooLong, readError == nil {
                readError = .limitExceeded(
                    path: path, offset: t.offset, what: "line \(t.line) length (bytes, at least)",
                    value: UInt64(t.length),
                    limit: UInt64(TextSafety.maxLineBytes))
            }
        }
        if case .memory(let b) = origin, isPlain(b) {
            bytesRead = UInt64(b.count)
            var line: UInt64 = 0
            try b.withUnsafeBytes { all in
                _ = try Self.scanLines(all, final: true, line: &line, tooLong: &tooLong, base: 0, body: body)
            }
            return
        }
        let stream: ByteStream
        do { stream = try openStream() } catch { readError = error; return }
        let cap = Self.lineBufferSize
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: cap, alignment: 64)
        defer { buf.deallocate() }
        var have = 0
        var line: UInt64 = 0
        var eof = false
        // Decompressed offset of buf[0].
        var bufferOffset: UInt64 = 0
        while !eof && tooLong == nil {
            do {
                let n = try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: buf[have...]))
                if n == 0 { eof = true } else { have += n; bytesRead += UInt64(n) }
            } catch {
                readError = error
                eof = true
            }
            var start = 0
            let view = UnsafeRawBufferPointer(rebasing: buf[0..<have])
            let used = try Self.scanLines(
                view, final: eof, line: &line, tooLong: &tooLong, base: bufferOffset, body: body)
            start += used
            if tooLong != nil { return }
            if start == 0 && have == cap {
                // No newline in a full buffer: the line is longer than the limit.
                tooLong = (line + 1, bufferOffset, cap)
                return
            }
            let rest = have - start
            if rest > 0 && start > 0 {
                Platform.moveBytes(to: buf.baseAddress!, from: buf.baseAddress! + start, count: rest)
            }
            bufferOffset += UInt64(start)
            have = rest
        }
    }

    /// Delivers the complete lines of `all` (and the unterminated last one when `final`); returns the
    /// number of bytes consumed (sniffers' form: a line over the limit stops the scan).
    @inline(__always)
    static func scanLines(
        _ all: UnsafeRawBufferPointer, final: Bool, line: inout UInt64,
        body: (UnsafeRawBufferPointer, UInt64) throws -> Void
    ) rethrows -> Int {
        var tooLong: (line: UInt64, offset: UInt64, length: Int)?
        return try scanLines(all, final: final, line: &line, tooLong: &tooLong, base: 0, body: body)
    }

    /// Delivers the complete lines of `all` (and the unterminated last one when `final`); returns the
    /// number of bytes consumed. A line longer than ``TextSafety/maxLineBytes`` is not delivered: it stops
    /// the scan and is described in `tooLong` (its number, its offset counted from `offset`, its length).
    @inline(__always)
    static func scanLines(
        _ all: UnsafeRawBufferPointer, final: Bool, line: inout UInt64,
        tooLong: inout (line: UInt64, offset: UInt64, length: Int)?, base offset: UInt64,
        body: (UnsafeRawBufferPointer, UInt64) throws -> Void
    ) rethrows -> Int {
        guard let base = all.baseAddress else { return 0 }
        let n = all.count
        let limit = TextSafety.maxLineBytes
        var start = 0
        while start < n {
            guard let hit = Platform.firstOffset(of: 0x0A, in: base + start, count: n - start) else { break }
            let end = start + hit
            var stop = end
            if stop > start && base.load(fromByteOffset: stop - 1, as: UInt8.self) == 0x0D { stop -= 1 }
            line += 1
            if stop - start > limit {
                tooLong = (line, offset + UInt64(start), stop - start)
                return start
            }
            try body(UnsafeRawBufferPointer(start: base + start, count: stop - start), line)
            start = end + 1
        }
        if final && start < n {
            var stop = n
            if base.load(fromByteOffset: stop - 1, as: UInt8.self) == 0x0D { stop -= 1 }
            line += 1
            if stop - start > limit {
                tooLong = (line, offset + UInt64(start), stop - start)
                return start
            }
            try body(UnsafeRawBufferPointer(start: base + start, count: stop - start), line)
            start = n
        }
        return start
    }
}
