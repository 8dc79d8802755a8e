import TraceFormat

/// One input format that `dmatrace ingest` can read. Each importer decodes one input into an ``EventSink``,
/// recording what it understood, skipped and did not know in ``IngestDiagnostics``.
///
/// Importers never throw for a bad line or record: they report it (file:line or byte offset) and go on.
/// They throw ``IngestError`` only when the input as a whole cannot be read (wrong format, unreadable).
public protocol Importer {
    /// The format id used by `--format` and stored in ``InputFile/format``.
    static var formatID: String { get }
    /// How strongly the first bytes of an input (already decompressed, up to 64 KiB) look like this format:
    /// 0 = not at all, 100 = certain (a magic number). `--format auto` picks the highest score.
    static func sniff(_ head: UnsafeRawBufferPointer) -> Int
    /// Decodes `input` into `sink`. `source` is the input's index in ``TraceMetadata/inputs`` (set it as each
    /// event's ``Event/source``); `clock` is the clock-domain id to stamp on events.
    mutating func run(
        _ input: IngestInput, source: UInt16, clock: UInt8,
        into sink: inout some EventSink, diagnostics: inout IngestDiagnostics
    ) throws(IngestError)
    /// Whether its events may carry the CPU that produced them (``Event/cpu``). Default false.
    static var recordsCPU: Bool { get }
}

extension Importer {
    public static var recordsCPU: Bool { false }
}
