import ArgumentParser
import TraceFormat
import TraceIngest

/// What `ingest` reads: input files, or a `tools/capture` directory.
struct IngestSourceOptions: ParsableArguments {
    @Argument(help: "Input files (`-` for stdin).")
    var inputs: [String] = []

    @Option(
        name: .customLong("capture-dir"),
        help: ArgumentHelp(
            "A capture directory made by tools/capture: its guest ftrace, dmesg and QEMU log, with the facts of its config.json.",
            discussion:
                "The facts the inputs cannot reveal (QEMU -device properties, vIOMMU, guest IOMMU mode, swiotlb) become "
                + "--meta pairs (a --meta given too wins); a written-down force_merge reason merges as --force-merge does; when "
                + "QEMU's log saw no DMA of the edu device, the DMA the guest programmed (guest-steps.log) is added from a side "
                + "input written next to the output (NAME.guest-edu-dma.jsonl).",
            valueName: "dir"), completion: .directory)
    var captureDir: String?
}

/// How `ingest` reads its inputs and writes the trace (``IngestRequest``).
struct IngestOptions: ParsableArguments {
    @Option(
        name: .customLong("input-format"),
        help: ArgumentHelp(
            "Input format for every input: auto, \(IngestOptions.formats.joined(separator: ", ")).",
            discussion:
                "The old spelling --format still works (hidden): --format is the output format everywhere else.",
            valueName: "format"),
        completion: .list(["auto"] + IngestOptions.formats))
    var inputFormat: String?

    /// The pre-0.2 spelling of `--input-format`.
    @Option(name: .customLong("format"), help: .hidden)
    var legacyFormat: String?

    /// The input format: `--input-format`, its old spelling `--format`, or auto.
    var format: String { inputFormat ?? legacyFormat ?? "auto" }

    @Option(
        name: .customLong("trace-events"), help: "QEMU trace-events-all of the QEMU that wrote a simpletrace or log.")
    var traceEvents: String?

    @Option(
        name: .customLong("meta"),
        help: ArgumentHelp(
            "Add a capture fact (key=value); repeatable.",
            discussion: "Keys kernel, kernel-cmdline, qemu, machine, viommu, viommu.PROP, guest-iommu "
                + "(off|passthrough|translated), flush (strict|lazy), swiotlb-forced (true|false), guest-cpus (N) "
                + "and confidential set capture facts (overriding the inputs); every pair is also stored as an extra fact."
        ))
    var meta: [String] = []

    @Option(help: "zstd level of the output (1 fastest ... 19 smallest).")
    var level: Int32 = 3

    @Option(help: ChunkLayout.help)
    var layout: ChunkLayout?

    @Flag(
        help:
            "Accept an input of which nothing was understood, and a trace without events (refused by default: exit 2).")
    var allowEmpty = false

    @Flag(
        help: ArgumentHelp(
            "Merge guest and host inputs even when they do not look like one run.",
            discussion:
                "Refused by default (exit 2, with the evidence): vIOMMU kinds that contradict each other, or, with at least "
                + "\(IngestReport.minGuestEventsJudged) guest iommu events, fewer than half of them attributed to a device or too few "
                + "guest maps paired with host translations to trust the clock alignment."))
    var forceMerge = false

    @Flag(help: "Parse and summarise only; write nothing.")
    var dryRun = false

    static var formats: [String] { ImporterRegistry.standard.formatIDs }

    /// The checks of `ingest`, in the order its usage errors are reported.
    func validate(_ sources: IngestSourceOptions, output: OutputOptions) throws {
        let inputs = sources.inputs
        if inputs.isEmpty && sources.captureDir == nil {
            throw ValidationError("give at least one input (or --capture-dir)")
        }
        if !inputs.isEmpty && sources.captureDir != nil {
            throw ValidationError("give inputs or --capture-dir, not both")
        }
        if output.output == nil && !dryRun { throw ValidationError("give -o OUT.dmat (or --dry-run)") }
        if inputFormat != nil && legacyFormat != nil {
            throw ValidationError("give --input-format once (--format is its old spelling)")
        }
        if !dryRun { try Terminal.refuseBinaryOutput(output.output) }
        if inputs.filter({ $0 == "-" }).count > 1 { throw ValidationError("stdin (-) can be given only once") }
        for m in meta where !m.contains("=") || m.hasPrefix("=") {
            throw ValidationError("--meta expects key=value, got '\(m)'")
        }
        if !(1...19).contains(level) { throw ValidationError("--level must be 1...19") }
        if format != "auto" && !Self.formats.contains(format) {
            throw ValidationError(
                "unknown --input-format \(format) (known: auto, \(Self.formats.joined(separator: ", ")))")
        }
    }

    /// The run these options describe.
    func request(_ sources: IngestSourceOptions, output: OutputOptions) -> IngestRequest {
        IngestRequest(
            inputs: sources.inputs, captureDir: sources.captureDir, format: format, traceEvents: traceEvents,
            meta: meta, output: dryRun ? nil : output.output,
            writer: .init(level: level, layout: layout ?? ChunkLayout.writerDefault), noClobber: output.noClobber,
            allowEmpty: allowEmpty, forceMerge: forceMerge)
    }
}
