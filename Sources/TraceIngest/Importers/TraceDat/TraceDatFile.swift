/// The structure of a trace-cmd `trace.dat` file, version 6 or 7 (trace-cmd Documentation/trace-cmd/trace-cmd.dat.v7.5.txt and .v6.5.txt): header, the
/// event format files it embeds, options (uname, trace clock, trace-cmd version) and where each CPU's
/// ring-buffer data lies. Parsing is a pure function of the bytes (fuzz-friendly); nothing here trusts a
/// size from the file before checking it against the bytes present and a limit.
///
/// Version 7 facts that differ from the man page (checked against real trace-cmd 3.1.6 files): section headers
/// carry an 8-byte size, the BUFFER option has a u32 page size after the clock name, and the BUFFER option may
/// sit in a second options section chained through DONE.
public struct TraceDatFile: Sendable {
    /// Where one CPU's flyrecord data lies in the file.
    public struct CPUData: Sendable, Equatable {
        /// CPU number.
        public var cpu: Int
        /// Absolute file offset of the data (of the chunk table when compressed).
        public var offset: UInt64
        /// Bytes in the file (compressed size when compressed).
        public var size: UInt64
    }

    /// One CPUSTAT option (`CPU: 1\nentries: 288\noverrun: 0\ncommit overrun: 0\n...dropped events: 0`).
    public struct CPUStat: Sendable, Equatable {
        /// CPU number.
        public var cpu: Int
        /// Events in the buffer when recording stopped.
        public var entries: UInt64 = 0
        /// Events overwritten before they were read (overwrite mode).
        public var overrun: UInt64 = 0
        /// Events lost to commit overruns (writers nested too deep).
        public var commitOverrun: UInt64 = 0
        /// Events refused because the buffer was full (non-overwrite mode).
        public var dropped: UInt64 = 0
        /// Events the tracer says it lost on this CPU.
        public var lost: UInt64 { overrun &+ commitOverrun &+ dropped }

        /// Parses the option text; nil without a `CPU:` line.
        init?(text: String) {
            var cpu: Int?
            for line in text.split(separator: "\n") {
                let kv = line.split(separator: ":", maxSplits: 1)
                guard kv.count == 2 else { continue }
                let value = String(kv[1]).trimmedBlanks()
                switch kv[0] {
                case "CPU": cpu = Int(value)
                case "entries": entries = UInt64(value) ?? 0
                case "overrun": overrun = UInt64(value) ?? 0
                case "commit overrun": commitOverrun = UInt64(value) ?? 0
                case "dropped events": dropped = UInt64(value) ?? 0
                default: break
                }
            }
            guard let cpu else { return nil }
            self.cpu = cpu
        }
    }

    /// Layout of a ring-buffer page header, from the embedded `header_page` format.
    public struct PageLayout: Sendable, Equatable {
        /// Offsets and sizes of the page's timestamp and commit words, and where the event data begins.
        public var timestampOffset = 0
        public var timestampSize = 8
        public var commitOffset = 8
        public var commitSize = 8
        public var dataOffset = 16
    }

    /// File version (6 or 7).
    public var version: Int
    /// Byte order of the traced machine (all binary fields).
    public var bigEndian: Bool
    /// `sizeof(long)` of the traced kernel.
    public var longSize: Int
    /// Ring-buffer page size.
    public var pageSize: Int
    /// `none`, `zstd`, `zlib` (v7); `none` for v6.
    public var compression: String
    /// Event formats by id (`common_type`).
    public var formats: [Int: TraceEventFormat]
    /// Ring-buffer page header layout.
    public var page: PageLayout
    /// UNAME option (`Linux (none) 6.1.0-56-amd64 x86_64`).
    public var uname: String?
    /// Trace clock of the recording (the bracketed entry of TRACECLOCK, or the BUFFER option's clock).
    public var traceClock: String?
    /// VERSION option: the trace-cmd that wrote the file.
    public var traceCmdVersion: String?
    /// Nanoseconds added to every timestamp (OFFSET/DATE options), as `trace-cmd report` does.
    public var timestampOffset: Int64
    /// Number of CPUs recorded by the tracer.
    public var cpuCount: Int
    /// Per-CPU data of the top-level instance, in file order.
    public var cpus: [CPUData]
    /// True when flyrecord data is a table of compressed chunks.
    public var cpuDataCompressed: Bool
    /// CPUSTAT options: per-CPU ring-buffer counters at the end of the recording.
    public var cpuStats: [CPUStat]
    /// Things the parser met but skipped (other instances, unknown compression of a section, ...).
    public var notes: [IngestDiagnostics.Problem]

    /// Kernel release from ``uname`` (third word: `6.1.0-56-amd64`).
    public var kernelRelease: String? {
        guard let uname else { return nil }
        let words = uname.split(separator: " ")
        return words.count >= 3 ? String(words[2]) : nil
    }

    /// Limits checked before anything is allocated for a size read from the file.
    public enum Limits {
        /// Largest embedded text block (format file, header text) and the other caps below, in bytes or counts.
        public static let maxTextBlock = 64 << 20
        public static let maxFormats = 200_000
        public static let maxSystems = 10_000
        public static let maxSection = 512 << 20
        public static let maxChunk = 256 << 20
        public static let maxCPUs = 8192
        public static let maxOptionsSections = 256
    }

    /// The magic: `17 08 44 "tracing"`.
    public static let magic: [UInt8] = [0x17, 0x08, 0x44] + Array("tracing".utf8)

    /// Parses the header, formats and options of `bytes`; throws ``IngestError`` (with the byte offset) when the
    /// file is not a trace.dat or is damaged before the event data.
    public static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws(IngestError) -> TraceDatFile {
        var r = BinaryReader(bytes, path: path)
        guard r.matches(0, magic) else {
            if bytes.count < magic.count { throw r.truncated(0, "trace.dat magic") }
            throw r.bad(0, "not a trace-cmd trace.dat (magic 17 08 44 'tracing' missing)")
        }
        let (versionText, afterVersion) = try r.cString(10, maxLength: 16, "file version")
        guard let version = Int(versionText), version == 6 || version == 7 else {
            throw r.bad(10, "unsupported trace.dat version '\(versionText)' (6 and 7 are read)")
        }
        let endian = try r.u8(afterVersion, "endianness")
        guard endian <= 1 else { throw r.bad(afterVersion, "endianness byte \(endian) (0 or 1 expected)") }
        r = BinaryReader(bytes, bigEndian: endian == 1, path: path)
        let longSize = Int(try r.u8(afterVersion + 1, "long size"))
        guard longSize == 4 || longSize == 8 else { throw r.bad(afterVersion + 1, "long size \(longSize)") }
        let pageSize = Int(try r.u32(afterVersion + 2, "page size"))
        guard pageSize >= 64 && pageSize <= (1 << 24) else { throw r.bad(afterVersion + 2, "page size \(pageSize)") }
        var file = TraceDatFile(
            version: version, bigEndian: endian == 1, longSize: longSize, pageSize: pageSize, compression: "none",
            formats: [:], page: PageLayout(), uname: nil, traceClock: nil, traceCmdVersion: nil, timestampOffset: 0,
            cpuCount: 0, cpus: [], cpuDataCompressed: false, cpuStats: [], notes: [])
        file.page.commitSize = longSize
        file.page.dataOffset = 8 + longSize
        let p = afterVersion + 6
        if version == 6 {
            try file.parseV6(r, at: p)
        } else {
            try file.parseV7(r, at: p)
        }
        return file
    }

    // MARK: - v6

    private mutating func parseV6(_ r: BinaryReader, at start: Int) throws(IngestError) {
        var p = try parseHeaderInfo(r, at: start)
        p = try parseFtraceFormats(r, at: p)
        p = try parseEventSystems(r, at: p)
        p = try skipBlock(r, at: p, sizeWidth: 4, "kallsyms")
        p = try skipBlock(r, at: p, sizeWidth: 4, "printk formats")
        p = try skipBlock(r, at: p, sizeWidth: 8, "saved cmdlines")
        let ncpus = Int(try r.u32(p, "cpu count"))
        guard ncpus <= Limits.maxCPUs else {
            throw .limitExceeded(
                path: r.path, offset: r.position(p), what: "cpu count", value: UInt64(ncpus),
                limit: UInt64(Limits.maxCPUs))
        }
        cpuCount = ncpus
        p += 4
        while true {
            let tag = try r.slice(p, 10, "section tag")
            let tagText = String(decoding: tag.prefix { $0 != 0 }, as: UTF8.self)
            let tagAt = p
            p += 10
            switch tagText {
            case "options  ":
                p = try parseOptions(r, at: p)
            case "flyrecord":
                for cpu in 0..<ncpus {
                    let off = try r.u64(p, "flyrecord offset of cpu \(cpu)")
                    let size = try r.u64(p + 8, "flyrecord size of cpu \(cpu)")
                    cpus.append(CPUData(cpu: cpu, offset: off, size: size))
                    p += 16
                }
                return
            case "latency  ":
                notes.append(
                    .init(
                        file: r.path, position: r.position(tagAt), isByteOffset: true,
                        message: "latency-tracer file: text data, no binary events"))
                return
            default:
                throw r.bad(tagAt, "unknown section tag '\(tagText)' (options/flyrecord/latency expected)")
            }
        }
    }

    // MARK: - v7

    private mutating func parseV7(_ r: BinaryReader, at start: Int) throws(IngestError) {
        let (comp, p1) = try r.cString(start, maxLength: 64, "compression name")
        let (_, p2) = try r.cString(p1, maxLength: 64, "compression version")
        compression = comp
        guard comp == "none" || comp == "zstd" else {
            throw r.bad(start, "compression '\(comp)' is not supported (none and zstd are)")
        }
        cpuDataCompressed = comp != "none"
        var next = try r.u64(p2, "offset of the first options section")
        var sectionOffsets: [UInt16: UInt64] = [:]
        var visited: Set<UInt64> = []
        var buffers: [(offset: Int, body: [UInt8], base: UInt64)] = []
        while next != 0 {
            guard visited.count < Limits.maxOptionsSections, visited.insert(next).inserted else {
                throw r.bad(Int(clamping: next), "options sections form a loop or exceed \(Limits.maxOptionsSections)")
            }
            guard let at = Int(exactly: next), r.has(at, 16) else {
                throw r.truncated(Int(clamping: next), "options section header")
            }
            let id = try r.u16(at)
            guard id == 0 else { throw r.bad(at, "section \(id) where an options section (0) was expected") }
            let body = try sectionBody(r, at: at)
            var chained: UInt64 = 0
            try body.withReader(r, base: next + 16, context: "options section at \(next)") {
                (o: BinaryReader) throws(IngestError) in
                chained = try self.parseV7Options(o, sectionOffsets: &sectionOffsets, buffers: &buffers)
            }
            next = chained
        }
        guard let headerAt = sectionOffsets[16] else { throw r.bad(0, "no HEADER_INFO section option") }
        let header = try sectionBody(r, at: try sectionStart(r, headerAt, expect: 16))
        try header.withReader(r, base: headerAt + 16, context: "HEADER_INFO section") {
            (h: BinaryReader) throws(IngestError) in
            _ = try self.parseHeaderInfo(h, at: 0)
        }
        if let ftraceAt = sectionOffsets[17] {
            let body = try sectionBody(r, at: try sectionStart(r, ftraceAt, expect: 17))
            try body.withReader(r, base: ftraceAt + 16, context: "FTRACE_EVENTS section") {
                (b: BinaryReader) throws(IngestError) in
                _ = try self.parseFtraceFormats(b, at: 0)
            }
        }
        guard let eventsAt = sectionOffsets[18] else { throw r.bad(0, "no EVENT_FORMATS section option") }
        let events = try sectionBody(r, at: try sectionStart(r, eventsAt, expect: 18))
        try events.withReader(r, base: eventsAt + 16, context: "EVENT_FORMATS section") {
            (b: BinaryReader) throws(IngestError) in
            _ = try self.parseEventSystems(b, at: 0)
        }
        for buffer in buffers {
            try SectionBytes.decompressed(buffer.body).withReader(r, base: buffer.base, context: "BUFFER option") {
                (b: BinaryReader) throws(IngestError) in
                try self.parseBufferOption(b, at: buffer.offset)
            }
        }
    }

    /// Returns the section start offset after checking its header id.
    private func sectionStart(_ r: BinaryReader, _ offset: UInt64, expect: UInt16) throws(IngestError) -> Int {
        guard let at = Int(exactly: offset), r.has(at, 16) else {
            throw r.truncated(Int(clamping: offset), "section \(expect) header")
        }
        let id = try r.u16(at)
        guard id == expect else { throw r.bad(at, "section id \(id) where \(expect) was expected") }
        return at
    }

    /// The body of the section whose 16-byte header is at `at` (u16 id, u16 flags, u32 string id, u64 size),
    /// decompressed when flag 1 is set.
    private func sectionBody(_ r: BinaryReader, at: Int) throws(IngestError) -> SectionBytes {
        let flags = try r.u16(at + 2)
        let size = try r.u64(at + 8, "section size")
        guard size <= UInt64(Limits.maxSection) else {
            throw .limitExceeded(
                path: r.path, offset: r.position(at + 8), what: "section size", value: size,
                limit: UInt64(Limits.maxSection))
        }
        let body = try r.slice(at + 16, Int(size), "section body")
        guard flags & 1 != 0 else { return .inFile(offset: at + 16, count: Int(size)) }
        let b = BinaryReader(body, bigEndian: r.bigEndian, path: r.path, base: r.position(at + 16))
        let csize = Int(try b.u32(0, "compressed size"))
        let usize = Int(try b.u32(4, "uncompressed size"))
        guard usize <= Limits.maxSection else {
            throw .limitExceeded(
                path: r.path, offset: r.position(at + 20), what: "uncompressed section size", value: UInt64(usize),
                limit: UInt64(Limits.maxSection))
        }
        let frame = try b.slice(8, csize, "compressed section data")
        switch ZstdFrameDecoder.decompress(frame, expectedSize: usize) {
        case .success(let out): return .decompressed(out)
        case .failure(let f): throw r.bad(at + 24, "section \(try r.u16(at)): \(f.reason)")
        }
    }

    /// Options inside one v7 options section; returns the next options section offset (DONE payload).
    private mutating func parseV7Options(
        _ o: BinaryReader, sectionOffsets: inout [UInt16: UInt64],
        buffers: inout [(offset: Int, body: [UInt8], base: UInt64)]
    ) throws(IngestError) -> UInt64 {
        var q = 0
        while q < o.count {
            let id = try o.u16(q, "option id")
            let size = Int(try o.u32(q + 2, "option size"))
            let data = try o.slice(q + 6, size, "option \(id) data")
            let dataAt = q + 6
            q += 6 + size
            switch id {
            case 0:
                return size >= 8 ? try o.u64(dataAt, "next options offset") : 0
            case 16...21:
                sectionOffsets[id] = try o.u64(dataAt, "section offset")
            case 3:
                buffers.append((offset: 0, body: Array(data), base: o.position(dataAt)))
            default:
                try applyOption(id, data, o, at: dataAt)
            }
        }
        return 0
    }

    /// BUFFER option: u64 section offset, instance name, clock name, u32 page size, u32 cpu count,
    /// cpu count × (u32 cpu, u64 offset, u64 size).
    private mutating func parseBufferOption(_ b: BinaryReader, at start: Int) throws(IngestError) {
        let (instance, p1) = try b.cString(start + 8, maxLength: 256, "buffer instance name")
        let (clock, p2) = try b.cString(p1, maxLength: 64, "buffer clock")
        guard instance.isEmpty else {
            notes.append(
                .init(
                    file: b.path, position: b.position(start), isByteOffset: true,
                    message: "trace instance '\(instance)' not read (only the top instance is)"))
            return
        }
        if !clock.isEmpty { traceClock = clock }
        let bufferPage = Int(try b.u32(p2, "buffer page size"))
        if bufferPage >= 64 && bufferPage <= (1 << 24) { pageSize = bufferPage }
        let n = Int(try b.u32(p2 + 4, "buffer cpu count"))
        guard n <= Limits.maxCPUs else {
            throw .limitExceeded(
                path: b.path, offset: b.position(p2 + 4), what: "buffer cpu count", value: UInt64(n),
                limit: UInt64(Limits.maxCPUs))
        }
        var q = p2 + 8
        for _ in 0..<n {
            let cpu = Int(try b.u32(q, "buffer cpu"))
            let off = try b.u64(q + 4, "buffer cpu offset")
            let size = try b.u64(q + 12, "buffer cpu size")
            cpus.append(CPUData(cpu: cpu, offset: off, size: size))
            q += 20
        }
    }

    // MARK: - shared blocks

    /// `header_page\0` u64 size text, `header_event\0` u64 size text.
    private mutating func parseHeaderInfo(_ r: BinaryReader, at start: Int) throws(IngestError) -> Int {
        var p = start
        try r.expect(p, Array("header_page\0".utf8), "'header_page' tag")
        p += 12
        let (pageText, p1) = try textBlock(r, at: p, sizeWidth: 8, "header_page")
        p = p1
        try r.expect(p, Array("header_event\0".utf8), "'header_event' tag")
        p += 13
        let (_, p2) = try textBlock(r, at: p, sizeWidth: 8, "header_event")
        if let layout = TraceEventFormat(text: "name: header_page\nID: 0\n" + pageText, system: "header") {
            if let f = layout.field("timestamp"), f.size == 8 { page.timestampOffset = f.offset }
            if let f = layout.field("commit"), f.size == 4 || f.size == 8 {
                page.commitOffset = f.offset
                page.commitSize = f.size
            }
            if let f = layout.field("data"), f.offset > 0 { page.dataOffset = f.offset }
        }
        return p2
    }

    /// u32 count × (u64 size, format text) of the `ftrace` system.
    private mutating func parseFtraceFormats(_ r: BinaryReader, at start: Int) throws(IngestError) -> Int {
        let n = Int(try r.u32(start, "ftrace format count"))
        guard n <= Limits.maxFormats else {
            throw .limitExceeded(
                path: r.path, offset: r.position(start), what: "ftrace format count", value: UInt64(n),
                limit: UInt64(Limits.maxFormats))
        }
        var p = start + 4
        for _ in 0..<n {
            let (text, next) = try textBlock(r, at: p, sizeWidth: 8, "ftrace event format")
            if let f = TraceEventFormat(text: text, system: "ftrace") { formats[f.id] = f }
            p = next
        }
        return p
    }

    /// u32 nsys × (`name\0`, u32 nev × (u64 size, format text)).
    private mutating func parseEventSystems(_ r: BinaryReader, at start: Int) throws(IngestError) -> Int {
        let nsys = Int(try r.u32(start, "event system count"))
        guard nsys <= Limits.maxSystems else {
            throw .limitExceeded(
                path: r.path, offset: r.position(start), what: "event system count", value: UInt64(nsys),
                limit: UInt64(Limits.maxSystems))
        }
        var p = start + 4
        for _ in 0..<nsys {
            let (system, afterName) = try r.cString(p, maxLength: 256, "event system name")
            let nev = Int(try r.u32(afterName, "event count of system \(system)"))
            guard nev <= Limits.maxFormats else {
                throw .limitExceeded(
                    path: r.path, offset: r.position(afterName), what: "event count", value: UInt64(nev),
                    limit: UInt64(Limits.maxFormats))
            }
            p = afterName + 4
            for _ in 0..<nev {
                let (text, next) = try textBlock(r, at: p, sizeWidth: 8, "event format of system \(system)")
                if let f = TraceEventFormat(text: text, system: system) { formats[f.id] = f }
                p = next
            }
        }
        return p
    }

    private func textBlock(_ r: BinaryReader, at p: Int, sizeWidth: Int, _ what: String) throws(IngestError) -> (
        String, Int
    ) {
        let size = sizeWidth == 8 ? try r.u64(p, "\(what) size") : UInt64(try r.u32(p, "\(what) size"))
        guard size <= UInt64(Limits.maxTextBlock) else {
            throw .limitExceeded(
                path: r.path, offset: r.position(p), what: "\(what) size", value: size,
                limit: UInt64(Limits.maxTextBlock))
        }
        let body = try r.slice(p + sizeWidth, Int(size), what)
        return (String(decoding: body, as: UTF8.self), p + sizeWidth + Int(size))
    }

    private func skipBlock(_ r: BinaryReader, at p: Int, sizeWidth: Int, _ what: String) throws(IngestError) -> Int {
        let size = sizeWidth == 8 ? try r.u64(p, "\(what) size") : UInt64(try r.u32(p, "\(what) size"))
        guard size <= UInt64(r.count) else { throw r.truncated(p, "\(what) of \(size) bytes") }
        try r.check(p + sizeWidth, Int(size), what)
        return p + sizeWidth + Int(size)
    }

    /// v6 options: (u16 id, u32 size, data) until id 0.
    private mutating func parseOptions(_ r: BinaryReader, at start: Int) throws(IngestError) -> Int {
        var p = start
        var count = 0
        while true {
            let id = try r.u16(p, "option id")
            p += 2
            if id == 0 { return p }
            let size = Int(try r.u32(p, "option size"))
            let data = try r.slice(p + 4, size, "option \(id) data")
            try applyOption(id, data, r, at: p + 4)
            p += 4 + size
            count += 1
            guard count < 100_000 else { throw r.bad(p, "more than 100000 options") }
        }
    }

    /// Options shared by v6 and v7.
    private mutating func applyOption(_ id: UInt16, _ data: UnsafeRawBufferPointer, _ r: BinaryReader, at: Int)
        throws(IngestError)
    {
        func text() -> String {
            String(decoding: data.prefix { $0 != 0 }, as: UTF8.self).trimmedBlanks()
        }
        switch id {
        case 1, 7:  // DATE, OFFSET: a signed integer in text, added to every timestamp
            let t = text()
            let v: Int64? = t.hasPrefix("0x") ? Int64(t.dropFirst(2), radix: 16) : Int64(t)
            if let v { timestampOffset &+= v }
        case 4:
            let t = text()
            if traceClock == nil, let open = t.firstIndex(of: "["), let close = t.firstIndex(of: "]"), open < close {
                traceClock = String(t[t.index(after: open)..<close])
            }
        case 5: uname = text()
        case 8:
            if data.count >= 4 { cpuCount = Int(try r.u32(at, "cpu count option")) }
        case 9: traceCmdVersion = text()
        case 2:
            if let stat = CPUStat(text: text()) { cpuStats.append(stat) }
        default: break
        }
    }
}

/// A section body: either a range of the file or a decompressed copy.
enum SectionBytes {
    case inFile(offset: Int, count: Int)
    case decompressed([UInt8])

    /// Calls `body` with a reader over the section bytes (`file` is the reader of the whole file).
    func withReader(
        _ file: BinaryReader, base: UInt64, context: String, _ body: (BinaryReader) throws(IngestError) -> Void
    ) throws(IngestError) {
        switch self {
        case let .inFile(offset, count):
            let view = UnsafeRawBufferPointer(rebasing: file.bytes[offset..<(offset + count)])
            try body(BinaryReader(view, bigEndian: file.bigEndian, path: file.path, base: base, context: context))
        case let .decompressed(bytes):
            try bytes.withIngestBytes { (p: UnsafeRawBufferPointer) throws(IngestError) in
                try body(
                    BinaryReader(
                        p, bigEndian: file.bigEndian, path: file.path, base: base, context: context + ", decompressed"))
            }
        }
    }
}

extension Array where Element == UInt8 {
    /// `withUnsafeBytes` for a body with typed ``IngestError`` throws.
    func withIngestBytes<R>(_ body: (UnsafeRawBufferPointer) throws(IngestError) -> R) throws(IngestError) -> R {
        let result: Result<R, IngestError> = withUnsafeBytes { p in
            Result { () throws(IngestError) -> R in try body(p) }
        }
        return try result.get()
    }
}
