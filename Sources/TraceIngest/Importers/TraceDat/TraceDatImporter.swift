import TraceFormat

/// Imports a trace-cmd `trace.dat` (versions 6 and 7, uncompressed or zstd sections and flyrecord chunks).
///
/// Events are decoded through the format files the .dat embeds, merged across CPUs in timestamp order (ties
/// keep CPU then record order, as `trace-cmd report` prints them), and mapped by ``KernelEventMapper``.
/// Provenance is the byte offset of the event header in the file; for compressed flyrecord data, the offset
/// of the zstd chunk holding the event. Missed-events flags of ring-buffer pages become ``EventKind/lostEvents``.
///
/// After ``run(_:source:clock:into:diagnostics:)``, ``header`` holds what the file says about the capture
/// (uname, kernel release, trace clock, trace-cmd version); the kernel release also goes into the sink's
/// metadata when none is set.
public struct TraceDatImporter: Importer {
    public static let formatID = "tracedat"
    /// Every record's event records the CPU of the ring buffer it came from.
    public static let recordsCPU = true

    /// The parsed header of the last input read.
    public private(set) var header: TraceDatFile?

    public init() {}

    /// 100 for the trace.dat magic `17 08 44 tracing`, else 0.
    public static func sniff(_ head: UnsafeRawBufferPointer) -> Int {
        BinaryReader(head, path: "").matches(0, TraceDatFile.magic) ? 100 : 0
    }

    public mutating func run(
        _ input: IngestInput, source: UInt16, clock: UInt8,
        into sink: inout some EventSink, diagnostics: inout IngestDiagnostics
    ) throws(IngestError) {
        let path = input.path
        let file = try input.readAll().withIngestBytes {
            (bytes: UnsafeRawBufferPointer) throws(IngestError) -> TraceDatFile in
            try Self.decode(bytes, path: path, source: source, clock: clock, into: &sink, diagnostics: &diagnostics)
        }
        header = file
        if sink.metadata.capture.kernelRelease == nil, let release = file.kernelRelease {
            sink.metadata.capture.kernelRelease = release
        }
        if file.cpuCount > 0 { sink.metadata.capture.noteGuestCPUs(file.cpuCount) }
        if let traceClock = file.traceClock, let i = sink.metadata.clocks.firstIndex(where: { $0.id == clock }),
            sink.metadata.clocks[i].name == "unknown"
        {
            sink.metadata.clocks[i].name = "guest-trace-\(traceClock)"
        }
    }

    /// Decodes a whole trace.dat held in `bytes` into `sink`: a pure function of the bytes, usable directly
    /// by a fuzz target. Throws only when the header, formats or options cannot be read; damage in the event
    /// data is reported in `diagnostics` and the rest is decoded.
    public static func decode(
        _ bytes: UnsafeRawBufferPointer, path: String, source: UInt16, clock: UInt8,
        into sink: inout some EventSink, diagnostics: inout IngestDiagnostics
    ) throws(IngestError) -> TraceDatFile {
        let file = try TraceDatFile.parse(bytes, path: path)
        for note in file.notes { diagnostics.note(note) }
        let ring = TraceDatRingBuffer(file: file, path: path)
        let streams = ring.loadStreams(bytes, diagnostics: &diagnostics)
        var records = ring.records(streams, diagnostics: &diagnostics)
        records.sort { a, b in a.timestamp != b.timestamp ? a.timestamp < b.timestamp : a.sequence < b.sequence }

        // The id field is itself described by the format files (`common_type`); fall back to the kernel's
        // fixed u16 at offset 0 only when no format lists it.
        let typeField =
            file.formats.values.lazy.compactMap { $0.field("common_type") }.first
            ?? TraceEventFormat.Field(
                name: "common_type", type: "unsigned short", offset: 0, size: 2, signed: false, storage: .scalar)
        var formats = FormatTable(file)
        defer { formats.count(into: &diagnostics) }
        var unknownIDs: [Int: Int] = [:]
        var pageLost: [Int: UInt64] = [:]
        let offset = file.timestampOffset
        let typeOffset = typeField.offset
        let typeSize = typeField.size
        do {
            // All records are read through one pointer to the CPUs' data, valid for the whole loop.
            try streams.data.withUnsafeBytes { all in
                for rec in records {
                    var template = Event(kind: .marker, clock: clock, source: source, position: rec.position)
                    template.timestamp =
                        offset >= 0 ? rec.timestamp &+ UInt64(offset) : rec.timestamp &- UInt64(offset.magnitude)
                    let cpu = streams.list[Int(rec.stream)].cpu
                    template.provenance |= Event.cpuBits(UInt16(clamping: cpu))
                    if rec.missed >= 0 {
                        template.kind = .lostEvents
                        template.aux = UInt32(clamping: rec.missed)
                        template.aux2 = UInt32(clamping: cpu)
                        diagnostics.addLost(rec.missed > 0 ? rec.missed : 1)
                        let lost = pageLost[cpu, default: 0].addingReportingOverflow(
                            rec.missed > 0 ? UInt64(rec.missed) : 1)
                        pageLost[cpu] = lost.overflow ? .max : lost.partialValue
                        diagnostics.note(
                            .init(
                                file: path, position: rec.position, isByteOffset: true,
                                message: rec.missed > 0
                                    ? "CPU \(cpu): ring buffer lost \(rec.missed) events"
                                    : "CPU \(cpu): ring buffer lost events (count unknown)"))
                        try append(template, to: &sink, path: path)
                        continue
                    }
                    let record = KernelRecord(
                        bytes: UnsafeRawBufferPointer(rebasing: all[rec.offset..<(rec.offset + Int(rec.length))]),
                        bigEndian: file.bigEndian)
                    let type =
                        record.integer(typeOffset, size: typeSize, signed: false).flatMap { Int(exactly: $0) } ?? -1
                    let h = formats.handle(type)
                    guard h >= 0 else {
                        unknownIDs[type, default: 0] += 1  // reported once per id below
                        continue
                    }
                    formats.mapper.cpu = UInt32(clamping: cpu)
                    switch try formats.mapper.map(record, format: h, template: template, sink: &sink) {
                    case .mapped: formats.understood[h] += 1
                    case .unknown: formats.unknown[h] += 1
                    case .malformed(let why):
                        diagnostics.skip(
                            .init(
                                file: path, position: rec.position, isByteOffset: true,
                                message: "\(formats.names[h]): \(why)"))
                    }
                }
            }
        } catch let error as IngestError {
            throw error
        } catch {
            throw IngestError.unreadable(path: path, reason: "could not store events: \(error)")
        }
        // Losses the CPUSTAT counters report beyond those flagged on the pages read.
        for stat in file.cpuStats where stat.lost > 0 {
            let flagged = pageLost[stat.cpu, default: 0]
            guard stat.lost > flagged else { continue }
            let extra = stat.lost - flagged
            var e = Event(
                kind: .lostEvents, timestamp: records.first?.timestamp ?? 0, clock: clock, source: source, position: 0)
            e.aux = UInt32(clamping: extra)
            e.aux2 = UInt32(clamping: stat.cpu)
            try append(e, to: &sink, path: path)
            diagnostics.addLost(extra)
            diagnostics.note(
                .init(
                    file: path, position: 0, isByteOffset: true,
                    message:
                        "CPU \(stat.cpu): the tracer reports \(stat.lost) events lost (overrun \(stat.overrun), commit overrun \(stat.commitOverrun), dropped \(stat.dropped))"
                ))
        }
        for (id, n) in unknownIDs.sorted(by: { $0.key < $1.key }) {
            diagnostics.skip(
                .init(
                    file: path, position: 0, isByteOffset: true,
                    message: "\(n) records with event id \(id), which no embedded format describes"))
            diagnostics.skipped += n - 1
        }
        return file
    }

    private static func append(_ e: Event, to sink: inout some EventSink, path: String) throws(IngestError) {
        do { try sink.append(e) } catch {
            throw IngestError.unreadable(path: path, reason: "could not store events: \(error)")
        }
    }

    /// The event formats of one file as the loop meets them: each id's format is resolved by the mapper the
    /// first time a record has that id; `handles` maps ids 0..<handles.count to the mapper's handle (or
    /// `unseen`, `noFormat`), `largeIDs` the rest. Counts per handle go into the diagnostics, under
    /// `system:name`, at the end (no name is hashed per record).
    private struct FormatTable {
        static let unseen = -1
        static let noFormat = -2
        let file: TraceDatFile
        var mapper = KernelEventMapper()
        var handles: [Int]
        var largeIDs: [Int: Int] = [:]
        /// Per handle: `system:name`, records mapped, records of an event not imported.
        var names: [String] = []
        var understood: [Int] = []
        var unknown: [Int] = []

        init(_ file: TraceDatFile) {
            self.file = file
            let ids = file.formats.keys.filter { $0 >= 0 }.max().map { $0 + 1 } ?? 0
            handles = [Int](repeating: Self.unseen, count: min(ids, 1 << 16))
        }

        /// The mapper's handle of event id `type`'s format; negative when no format describes it.
        @inline(__always) mutating func handle(_ type: Int) -> Int {
            let known = type >= 0 && type < handles.count ? handles[type] : largeIDs[type] ?? Self.unseen
            return known != Self.unseen ? known : resolve(type)
        }

        private mutating func resolve(_ type: Int) -> Int {
            var h = Self.noFormat
            if let format = file.formats[type] {
                h = mapper.resolve(format, longSize: file.longSize)
                names.append("\(format.system):\(format.name)")
                understood.append(0)
                unknown.append(0)
            }
            if type >= 0 && type < handles.count { handles[type] = h } else { largeIDs[type] = h }
            return h
        }

        func count(into diagnostics: inout IngestDiagnostics) {
            for (h, name) in names.enumerated() {
                if understood[h] > 0 { diagnostics.understood[name, default: 0] += understood[h] }
                if unknown[h] > 0 { diagnostics.unknown[name, default: 0] += unknown[h] }
            }
        }
    }
}
