import TraceFormat

/// Options some importers need (companion files).
public struct ImportOptions: Sendable, Equatable {
    /// `--trace-events FILE`: QEMU's `trace-events-all` for simpletrace binaries.
    public var traceEvents: String?

    public init(traceEvents: String? = nil) {
        self.traceEvents = traceEvents
    }
}

/// One format `dmatrace ingest` can read: its id, how its timestamps are clocked, how to sniff it and how
/// to make its ``Importer``.
public struct ImporterEntry: Sendable {
    /// `--format` id (``Importer/formatID``).
    public let formatID: String
    /// The clock domain its timestamps are in (``ClockDomain/name``): inputs with the same domain share
    /// one clock id, so a guest ftrace file and the same guest's dmesg need no alignment between them.
    public let clockDomain: String
    /// Whether event positions are lines or byte offsets.
    public let positionUnit: InputFile.PositionUnit
    /// ``Importer/sniff(_:)`` of the type.
    public let sniff: @Sendable (UnsafeRawBufferPointer) -> Int
    /// Makes a fresh importer for one input.
    public let make: @Sendable (ImportOptions) throws(IngestError) -> any Importer
    /// ``Importer/recordsCPU`` of the type: a `.dmat` written from it declares format 3.0.
    public let recordsCPU: Bool

    public init(
        formatID: String, clockDomain: String, positionUnit: InputFile.PositionUnit,
        sniff: @escaping @Sendable (UnsafeRawBufferPointer) -> Int,
        make: @escaping @Sendable (ImportOptions) throws(IngestError) -> any Importer, recordsCPU: Bool = false
    ) {
        self.formatID = formatID
        self.clockDomain = clockDomain
        self.positionUnit = positionUnit
        self.sniff = sniff
        self.make = make
        self.recordsCPU = recordsCPU
    }

    /// An entry for an importer type with a no-argument initialiser.
    public static func simple<I: Importer & SendableMetatype>(
        _ type: I.Type, clockDomain: String, positionUnit: InputFile.PositionUnit,
        _ make: @escaping @Sendable () -> I
    ) -> ImporterEntry {
        ImporterEntry(
            formatID: I.formatID, clockDomain: clockDomain, positionUnit: positionUnit,
            sniff: { I.sniff($0) }, make: { _ in make() }, recordsCPU: I.recordsCPU)
    }
}

/// The importers known to `dmatrace ingest`, with `--format auto` sniffing.
public struct ImporterRegistry: Sendable {
    /// The entries in preference order (earlier wins a tie).
    public var entries: [ImporterEntry]

    public init(entries: [ImporterEntry]) {
        self.entries = entries
    }

    /// Clock domain names used by the built-in importers.
    public enum Clock {
        /// Guest time since boot (ftrace `local`/`global`, printk).
        public static let guestBoot = "guest-boot"
        /// Host wall clock (QEMU log backend `-msg timestamp=on`).
        public static let hostRealtime = "host-realtime"
        /// Host CLOCK_MONOTONIC (simpletrace).
        public static let hostMonotonic = "host-monotonic"
        /// Whatever clock a JSONL file's author used (not aligned with others).
        public static let jsonl = "jsonl"
    }

    /// Every importer of this module. Binary formats come first so that a tie never sends a binary file
    /// to a text importer.
    public static let standard = ImporterRegistry(entries: [
        .simple(TraceDatImporter.self, clockDomain: Clock.guestBoot, positionUnit: .byte) { TraceDatImporter() },
        ImporterEntry(
            formatID: SimpletraceImporter.formatID, clockDomain: Clock.hostMonotonic, positionUnit: .byte,
            sniff: { SimpletraceImporter.sniff($0) },
            make: { (o: ImportOptions) throws(IngestError) -> any Importer in
                guard let path = o.traceEvents else { return SimpletraceImporter() }
                return SimpletraceImporter(traceEvents: try loadTraceEvents(path))
            }),
        .simple(JSONLImporter.self, clockDomain: Clock.jsonl, positionUnit: .line) { JSONLImporter() },
        .simple(FtraceTextImporter.self, clockDomain: Clock.guestBoot, positionUnit: .line) { FtraceTextImporter() },
        ImporterEntry(
            formatID: QEMULogImporter.formatID, clockDomain: Clock.hostRealtime, positionUnit: .line,
            sniff: { QEMULogImporter.sniff($0) },
            make: { (o: ImportOptions) throws(IngestError) -> any Importer in
                guard let path = o.traceEvents else { return QEMULogImporter() }
                return QEMULogImporter(traceEvents: try loadTraceEvents(path))
            }),
        .simple(DmesgImporter.self, clockDomain: Clock.guestBoot, positionUnit: .line) { DmesgImporter() }
    ])

    /// Reads a `trace-events-all` file (`--trace-events`), plain or compressed.
    static func loadTraceEvents(_ path: String) throws(IngestError) -> QEMUTraceEvents {
        QEMUTraceEvents(bytes: try IngestInput.open(path).readAll(limit: 64 << 20))
    }

    /// The ids, in order, for help texts.
    public var formatIDs: [String] { entries.map(\.formatID) }

    /// The entry for `id`.
    public func entry(_ id: String) -> ImporterEntry? {
        entries.first { $0.formatID == id }
    }

    /// The entry whose ``ImporterEntry/sniff`` scores `head` highest (ties: earlier entry); nil when
    /// every importer scores 0.
    public func sniff(_ head: UnsafeRawBufferPointer) -> (entry: ImporterEntry, score: Int)? {
        var best: (ImporterEntry, Int)?
        for e in entries {
            let s = e.sniff(head)
            if s > 0 && s > (best?.1 ?? 0) { best = (e, s) }
        }
        return best
    }

    /// Picks the importer for `input`: `format` by id, or the best sniff for `auto`.
    public func choose(_ format: String, for input: IngestInput) throws(IngestError) -> ImporterEntry {
        if format != "auto" {
            guard let e = entry(format) else {
                throw .badFormat(
                    path: input.path, offset: 0,
                    reason: "unknown --format \(format) (known: auto, \(formatIDs.joined(separator: ", ")))")
            }
            return e
        }
        let head = try input.head()
        if head.isEmpty { throw .badFormat(path: input.path, offset: 0, reason: "the input is empty") }
        guard let (e, _) = head.withUnsafeBytes({ sniff($0) }) else { throw .unknownFormat(path: input.path) }
        return e
    }
}
