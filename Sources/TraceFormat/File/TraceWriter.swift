import FoundationEssentials
import SystemPackage

/// Streams events into a `.dmat` file (or standard output) in chunks of independent zstd frames.
///
/// Side tables (new strings, changed metadata) are written just before the chunk that first needs them,
/// so a file cut anywhere is self-consistent up to its last complete chunk. The output is opened through
/// ``OutputTarget`` like every output: a file is written atomically (the data goes to ``temporaryPath``,
/// `FILE.partial`, renamed over the target by ``finish()``; a symbolic link is followed and kept), a
/// character device or FIFO is written in place, an input of the same command is refused. A writer that is
/// killed leaves the temporary file, readable up to its last complete chunk; a writer released without
/// `finish()` removes it.
///
/// A full chunk is compressed and appended on a background thread while the caller fills the next one
/// (``Options/pipelineDepth``, see ``ChunkCompressionPipeline``); the file's bytes are the same as with
/// synchronous writing. An error of that stage (a full disk) is thrown by the next `append`, `flush` or
/// `finish`, and by every call after it.
public final class TraceWriter: EventSink {
    /// Tuning knobs.
    public struct Options: Sendable {
        /// Events per chunk (1…``DMATFormat/maxChunkEvents``); 64 Ki events is 3.5 MiB raw per chunk.
        public var chunkEvents: Int
        /// zstd level.
        public var level: Int32
        /// libzstd worker threads per chunk (0: compress on the calling thread). The default, 2, splits a
        /// 3.5 MiB chunk into 1 MiB jobs compressed in parallel; the bytes written are the same for any
        /// value ≥ 1, so output does not depend on the machine.
        public var workers: Int32
        /// Finished chunks that may wait or be compressed on a background thread while the next one fills
        /// (0…``maxPipelineDepth``; 0 compresses and writes on the calling thread). The bytes written do
        /// not depend on it; memory grows by one chunk buffer per unit.
        public var pipelineDepth: Int

        /// The largest ``pipelineDepth``.
        public static let maxPipelineDepth = 8

        /// How chunks encode their records (default ``ChunkLayout/writerDefault``). `compact` is about 2.5×
        /// smaller; `rows` keeps `zstd -d FILE` printing the 56-byte records and writes a format 1.0 file that
        /// older readers read.
        public var layout: ChunkLayout

        /// Whether events may carry a CPU (``Event/cpu``): the file then declares format 3.0, whose readers
        /// know record bytes 54–55 as the CPU. Without it the file declares ``ChunkLayout/majorVersion`` (1.0 or
        /// 2.0, which older readers read) and an event with a CPU is refused. The ingest pipeline sets it when
        /// an input's format records CPUs.
        public var cpus: Bool

        public init(
            chunkEvents: Int = 65536, level: Int32 = 3, workers: Int32 = 2, pipelineDepth: Int = 2,
            layout: ChunkLayout = ChunkLayout.writerDefault, cpus: Bool = false
        ) {
            self.chunkEvents = chunkEvents
            self.level = level
            self.workers = workers
            self.pipelineDepth = pipelineDepth
            self.layout = layout
            self.cpus = cpus
        }

        /// The major version the file declares.
        public var majorVersion: UInt16 { cpus ? DMATFormat.cpuMajorVersion : layout.majorVersion }
    }

    /// The path given (`-` for standard output).
    public let path: String
    /// Where the data goes until ``finish()`` renames it to ``path``; nil for standard output.
    public let temporaryPath: String?
    /// The metadata; a change is written before the next chunk and at ``finish()``.
    public var metadata: TraceMetadata

    /// Events written so far (including the pending, not yet flushed chunk).
    public var eventCount: UInt64 { appended }
    /// The storage of ``eventCount``: private, so that `append` updates it without a dynamic exclusivity check
    /// (a `public private(set)` stored property of a class got `swift_beginAccess` on every event: ~76 of ~146
    /// instructions per event of `append`, `ingest -o` of a 20 MB gen_ftrace file under callgrind).
    private var appended: UInt64 = 0
    /// Chunks written so far (including those still being compressed).
    public private(set) var chunkCount: UInt32 = 0
    /// Bytes written so far; waits for the chunks still being compressed.
    public var bytesWritten: UInt64 {
        try? pipeline.drain()
        return pipeline.bytesWritten
    }

    private let output: OutputFile
    private var fd: FileDescriptor { output.fd }
    private let options: Options
    /// Compresses and writes, in order, on a background thread (``Options/pipelineDepth``).
    private let pipeline: ChunkCompressionPipeline
    /// The chunk buffer being filled, and its slot in the pipeline.
    private var records: UnsafeMutableRawBufferPointer
    private var slot: Int
    private var pending = 0
    private var minTS = UInt64.max
    private var maxTS: UInt64 = 0
    private var strings: [String] = []
    private var stringIDs: [String: UInt32] = [:]
    private var stringBytes = 0
    private var writtenStrings = 0
    private var writtenMetadata: TraceMetadata?
    private var stringOverflow = false
    private var finished = false

    /// Opens `path` (or standard output for `-`) and writes the header frame and the initial metadata.
    /// - Parameters:
    ///   - inputs: the files the command reads; writing over one of them is refused (``OutputError``).
    ///   - noClobber: refuse to replace an existing file.
    /// - Throws: ``TraceFormatError`` when the file cannot be created or written, or options are out of range;
    ///   ``OutputError`` when the output must not be written.
    public init(
        path: String, metadata: TraceMetadata = TraceMetadata(), options: Options = Options(),
        inputs: [String] = [], noClobber: Bool = false
    ) throws {
        guard options.chunkEvents >= 1, options.chunkEvents <= DMATFormat.maxChunkEvents else {
            throw TraceFormatError.invalidArgument(
                "chunk size \(options.chunkEvents) events is outside 1...\(DMATFormat.maxChunkEvents)")
        }
        guard (0...Options.maxPipelineDepth).contains(options.pipelineDepth) else {
            throw TraceFormatError.invalidArgument(
                "pipeline depth \(options.pipelineDepth) is outside 0...\(Options.maxPipelineDepth)")
        }
        self.path = path
        self.metadata = metadata
        self.options = options
        output = try OutputFile(
            try OutputTarget.resolve(path, inputs: inputs, noClobber: noClobber, temporary: .partial))
        temporaryPath = output.target.temporaryPath
        do {
            pipeline = try ChunkCompressionPipeline(
                fd: output.fd, path: path, writePath: temporaryPath ?? path,
                chunkBytes: options.chunkEvents * Event.recordSize,
                depth: options.pipelineDepth, level: options.level, workers: options.workers, layout: options.layout)
        } catch {
            output.discard()
            throw error
        }
        (slot, records) = pipeline.firstSlot
        do {
            try write(Self.headerFrame(chunkEvents: UInt32(options.chunkEvents), major: options.majorVersion))
            try writeSideTables()
            try pipeline.drain()
        } catch {
            discard()
            throw error
        }
    }

    deinit {
        if !finished { discard() }
        pipeline.stop()
    }

    private func discard() {
        guard !finished else { return }
        finished = true
        // The background thread must be gone before the descriptor is closed.
        pipeline.stop()
        output.discard()
    }

    /// Appends one event; a full chunk is compressed and written.
    /// - Throws: ``TraceFormatError`` on a write error, after ``finish()``, or when the string table overflowed.
    public func append(_ event: Event) throws {
        if pending == options.chunkEvents { try emitChunk() }
        guard !finished else { throw TraceFormatError.invalidArgument("append after finish") }
        if event.provenance > Event.positionMask && !options.cpus { throw Self.undeclaredCPU(eventCount) }
        event.store(to: records.baseAddress! + pending &* Event.recordSize)
        pending += 1
        appended += 1
        if event.timestamp < minTS { minTS = event.timestamp }
        if event.timestamp > maxTS { maxTS = event.timestamp }
    }

    /// Appends raw 56-byte records (for copying traces without decoding).
    public func appendRecords(_ raw: UnsafeRawBufferPointer) throws {
        guard raw.count % Event.recordSize == 0 else {
            throw TraceFormatError.invalidArgument("record bytes not a multiple of \(Event.recordSize)")
        }
        var at = 0
        while at < raw.count {
            if pending == options.chunkEvents { try emitChunk() }
            let n = min(options.chunkEvents - pending, (raw.count - at) / Event.recordSize)
            let bytes = n * Event.recordSize
            let dst = records.baseAddress! + pending * Event.recordSize
            dst.copyMemory(from: raw.baseAddress! + at, byteCount: bytes)
            for i in 0..<n
            where !options.cpus && dst.loadUnaligned(fromByteOffset: i * Event.recordSize + 54, as: UInt16.self) != 0 {
                throw Self.undeclaredCPU(eventCount + UInt64(i))
            }
            for i in 0..<n {
                let ts = UInt64(
                    littleEndian: dst.loadUnaligned(fromByteOffset: i * Event.recordSize + 8, as: UInt64.self))
                if ts < minTS { minTS = ts }
                if ts > maxTS { maxTS = ts }
            }
            pending += n
            appended += UInt64(n)
            at += bytes
        }
    }

    /// Returns the id of `string`, adding it to the table (written before the next chunk).
    public func intern(_ string: String) -> UInt32 {
        if let id = stringIDs[string] { return id }
        let bytes = string.utf8.count
        guard strings.count < DMATFormat.maxStrings, bytes <= DMATFormat.maxStringBytes,
            stringBytes + bytes <= DMATFormat.maxStringTableBytes
        else {
            stringOverflow = true
            return Event.noString
        }
        let id = UInt32(strings.count)
        strings.append(string)
        stringIDs[string] = id
        stringBytes += bytes
        return id
    }

    /// Registers (or merges) a device in the metadata and returns its index.
    public func device(_ info: DeviceInfo) -> UInt16 {
        metadata.devices.register(info)
    }

    /// The string with id `id`, if interned.
    public func string(_ id: UInt32) -> String? {
        Int(exactly: id).flatMap { $0 < strings.count ? strings[$0] : nil }
    }

    /// Waits until every full chunk (handed to the background stage by `append`) is in the file; the
    /// pending events of the chunk being filled stay pending. A reader of ``temporaryPath`` then sees every
    /// full chunk.
    /// - Throws: the background stage's error, if any.
    public func waitUntilWritten() throws {
        try pipeline.drain()
    }

    /// Writes the pending events as a (possibly short) chunk, preceded by any new side tables, and waits
    /// until everything appended so far is in the file.
    public func flush() throws {
        try emitChunk()
        try pipeline.drain()
    }

    /// Hands the pending events as a (possibly short) chunk, preceded by any new side tables, to the
    /// pipeline, which compresses and appends it while the next chunk fills.
    private func emitChunk() throws {
        guard !finished else { throw TraceFormatError.invalidArgument("flush after finish") }
        if stringOverflow {
            throw TraceFormatError.limitExceeded(
                path: path, offset: bytesWritten, what: "string table",
                limit:
                    "\(DMATFormat.maxStrings) strings, \(DMATFormat.maxStringBytes) bytes each, \(DMATFormat.maxStringTableBytes) total"
            )
        }
        guard pending > 0 else { return }
        try writeSideTables()
        (slot, records) = try pipeline.submitChunk(
            slot: slot,
            .init(
                sequence: chunkCount, events: UInt32(pending), byteCount: pending * Event.recordSize,
                minTS: minTS, maxTS: maxTS, strings: UInt32(strings.count)))
        chunkCount += 1
        pending = 0
        minTS = .max
        maxTS = 0
    }

    /// Flushes the last chunk, writes final metadata, remaining strings and the index, closes the file
    /// and renames it to ``path``.
    public func finish() throws {
        guard !finished else { return }
        do {
            try emitChunk()
            try writeSideTables()
            try write(try pipeline.seekTable())
            try pipeline.drain()
        } catch {
            discard()
            throw error
        }
        finished = true
        pipeline.stop()
        try output.commit()
    }

    private func writeSideTables() throws {
        if writtenStrings < strings.count {
            // Split so that no frame exceeds the reader's frame limit.
            var first = writtenStrings
            while first < strings.count {
                var body = ByteWriter()
                body.u32(UInt32(first))
                body.u32(0)
                var count: UInt32 = 0
                var i = first
                while i < strings.count {
                    let u = Array(strings[i].utf8)
                    if count > 0, body.bytes.count + 4 + u.count > DMATFormat.maxStringFrameBytes { break }
                    body.u32(UInt32(u.count))
                    body.append(u)
                    count += 1
                    i += 1
                }
                withUnsafeBytes(of: count.littleEndian) { c in
                    for k in 0..<4 { body.bytes[4 + k] = c[k] }
                }
                try write(ByteWriter.sideFrame(tag: DMATFormat.Tag.strings, body: body.bytes))
                first = i
            }
            writtenStrings = strings.count
        }
        if writtenMetadata != metadata {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let json: Data
            do {
                json = try encoder.encode(metadata)
            } catch {
                throw TraceFormatError.invalidArgument("metadata cannot be encoded: \(error)")
            }
            guard json.count <= DMATFormat.maxMetadataBytes else {
                throw TraceFormatError.limitExceeded(
                    path: path, offset: bytesWritten, what: "metadata JSON",
                    limit: "\(DMATFormat.maxMetadataBytes) bytes")
            }
            try write(ByteWriter.sideFrame(tag: DMATFormat.Tag.metadata, body: [UInt8](json)))
            writtenMetadata = metadata
        }
    }

    /// The error for event `index` carrying a CPU in a file that did not declare ``Options/cpus``.
    private static func undeclaredCPU(_ index: UInt64) -> TraceFormatError {
        .invalidArgument(
            "event \(index) carries a CPU, but the writer was not opened with cpus (a format 3.0 file); "
                + "a 1.x or 2.x reader would read the CPU as part of the position")
    }

    static func headerFrame(chunkEvents: UInt32, major: UInt16 = ChunkLayout.rows.majorVersion) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // The schema is a compile-time constant made of plain strings and numbers; encoding cannot fail.
        let table = major >= DMATFormat.cpuMajorVersion ? TraceSchema.current : TraceSchema.withoutCPU
        let schema = (try? encoder.encode(table)).map { [UInt8]($0) } ?? []
        var body = ByteWriter()
        body.u16(major)
        body.u16(DMATFormat.minorVersion)
        body.u16(UInt16(DMATFormat.recordSize))
        body.u16(0)
        body.u32(chunkEvents)
        body.u32(UInt32(schema.count))
        body.append(schema)
        return ByteWriter.sideFrame(tag: DMATFormat.Tag.header, body: body.bytes)
    }

    /// Writes arbitrary bytes as they are (tests use it to add frames a newer writer might emit).
    func writeRaw(_ bytes: [UInt8]) throws {
        try writeSideTables()
        try write(bytes)
    }

    /// Queues `bytes` behind everything written before (see ``ChunkCompressionPipeline``).
    private func write(_ bytes: [UInt8]) throws {
        try pipeline.submit(bytes)
    }
}
