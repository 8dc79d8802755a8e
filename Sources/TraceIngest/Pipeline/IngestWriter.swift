import TraceFormat

/// Where `dmatrace ingest` writes its `.dmat`.
public struct IngestDestination {
    /// The output path (`-` for standard output).
    public var path: String
    public var options: TraceWriter.Options
    /// The files the ingest reads (writing over one is refused).
    public var inputs: [String]
    public var noClobber: Bool

    public init(path: String, options: TraceWriter.Options, inputs: [String], noClobber: Bool) {
        self.path = path
        self.options = options
        self.inputs = inputs
        self.noClobber = noClobber
    }
}

extension IngestPipeline {
    /// Runs `plan` and writes the trace to `destination` (nil: a dry run that only parses and counts).
    /// Several inputs (or inputs that need merging) are merged in memory, guest and host aligned, and written
    /// in time order; one input streams straight into the writer in input order (constant memory).
    /// `check` sees the report and the event count before anything is committed: when it throws, nothing is
    /// written (the writer removes its temporary file, the target is untouched). `progress` counts the events
    /// imported (merged inputs: then those written).
    public func write(
        _ plan: Plan, meta facts: [String: String], to destination: IngestDestination?, progress: ProgressMeter? = nil,
        check: (IngestReport, UInt64) throws -> Void
    ) throws -> (report: IngestReport, events: UInt64) {
        var options = destination?.options ?? TraceWriter.Options()
        options.cpus = options.cpus || plan.recordsCPU
        if plan.needsMerge || plan.inputs.count > 1 {
            let (buffer, report) = try ingest(plan, meta: facts)
            let events = UInt64(buffer.events.count)
            progress?.total = events
            try check(report, events)
            if let destination {
                let writer = try TraceWriter(
                    path: destination.path, metadata: buffer.metadata, options: options,
                    inputs: destination.inputs, noClobber: destination.noClobber)
                // A fresh writer numbers strings from 0 like the buffer did, so ids carry over.
                var identical = true
                for (i, s) in buffer.strings.enumerated() where writer.intern(s) != UInt32(i) { identical = false }
                var metered = MeteredSink(writer, meter: progress ?? ProgressMeter(unit: "events"))
                for var e in buffer.events {
                    if !identical { Self.remapStrings(&e, from: buffer, to: writer) }
                    try metered.append(e)
                }
                metered.flushMeter()
                writer.metadata = buffer.metadata
                try writer.finish()
            }
            return (report, events)
        }
        guard let destination else {
            var sink = MeteredSink(CountingSink(), meter: progress ?? ProgressMeter(unit: "events"))
            let report = try run(plan, into: &sink)
            sink.flushMeter()
            try check(report, sink.base.count)
            return (report, sink.base.count)
        }
        let writer = try TraceWriter(
            path: destination.path, options: options, inputs: destination.inputs,
            noClobber: destination.noClobber)
        var metered = MeteredSink(writer, meter: progress ?? ProgressMeter(unit: "events"))
        let report = try run(plan, into: &metered)
        metered.flushMeter()
        try Self.apply(meta: facts, to: &writer.metadata)
        let events = writer.eventCount
        // Refused before finish(): the writer removes its temporary file, the target is untouched.
        try check(report, events)
        try writer.finish()
        return (report, events)
    }

    /// Re-interns the strings of `e` (slots typed `string` in ``KindSchema``) from `buffer` into `writer`.
    public static func remapStrings(_ e: inout Event, from buffer: EventBuffer, to writer: TraceWriter) {
        for f in KindSchema.fields(e.kind) where f.type == .string {
            let id = UInt32(truncatingIfNeeded: e.value(of: f.slot))
            guard id != Event.noString else { continue }
            _ = e.set(f.slot, UInt64(buffer.string(id).map { writer.intern($0) } ?? Event.noString))
        }
    }
}

/// Counts events and drops them (`ingest --dry-run`), after doing what ``TraceFormat/TraceWriter/append(_:)``
/// does with each before compression: its 56-byte record is encoded into a block of records, reused, and its
/// timestamp counted in the span. So a dry run does an ingest's work but compression and the file, and the
/// optimizer cannot drop the parse of a field no one reads: with `count += 1` alone it compiled importers whose
/// events' timestamp and line were dead arguments (`Tf4nnnddnn_n` specializations in `nm`).
public struct CountingSink: EventSink {
    public var count: UInt64 = 0
    public var metadata = TraceMetadata()
    /// The lowest and highest timestamp seen (`UInt64.max` and 0 before the first event).
    public private(set) var minTimestamp = UInt64.max
    public private(set) var maxTimestamp: UInt64 = 0
    private let block = RecordBlock()
    private var strings: [String: UInt32] = [:]

    public init() {}

    public mutating func append(_ event: Event) throws {
        event.store(to: block.record(Int(truncatingIfNeeded: count) & (RecordBlock.records - 1)))
        count &+= 1
        if event.timestamp < minTimestamp { minTimestamp = event.timestamp }
        if event.timestamp > maxTimestamp { maxTimestamp = event.timestamp }
    }

    public mutating func intern(_ string: String) -> UInt32 {
        if let id = strings[string] { return id }
        let id = UInt32(strings.count)
        strings[string] = id
        return id
    }

    public mutating func device(_ info: DeviceInfo) -> UInt16 { metadata.devices.register(info) }
}

/// The records a ``CountingSink`` encodes, written over and over (owned memory, hence a class).
final class RecordBlock {
    /// Records in the block: a power of two.
    static let records = 4096
    private let base = UnsafeMutableRawPointer.allocate(
        byteCount: RecordBlock.records * Event.recordSize, alignment: 8)

    deinit { base.deallocate() }

    /// Record `i` (0 ..< ``records``).
    @inline(__always) func record(_ i: Int) -> UnsafeMutableRawPointer {
        assert(i >= 0 && i < Self.records)
        return base + i &* Event.recordSize
    }
}
