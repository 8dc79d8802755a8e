import ArgumentParser
import TraceFormat
import TraceIngest

/// `dmatrace ingest`: turns captures (ftrace text, trace.dat, QEMU log, simpletrace, dmesg, JSONL) into
/// one `.dmat`, merging guest and host inputs of one run onto one clock (``IngestPipeline``).
struct IngestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Import captures into one .dmat trace.",
        discussion: """
            Inputs may be plain, zstd- or gzip-compressed (detected from their first bytes), or `-` for stdin. \
            With --input-format auto (the default) each input's format is sniffed. Several inputs of one run (guest \
            ftrace or trace.dat, QEMU log, dmesg) are merged: guest and host clocks are aligned from matching \
            events and device-less guest iommu events are attributed to devices; the summary on stderr reports \
            the alignment quality.

            \(ExitStatus.helpText)
            """)

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

    @OptionGroup var output: OutputOptions

    @Option(
        name: .customLong("input-format"),
        help: ArgumentHelp(
            "Input format for every input: auto, \(IngestCommand.formats.joined(separator: ", ")).",
            discussion:
                "The old spelling --format still works (hidden): --format is the output format everywhere else.",
            valueName: "format"),
        completion: .list(["auto"] + IngestCommand.formats))
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
                + "(off|passthrough|translated), flush (strict|lazy), swiotlb-forced (true|false) and confidential "
                + "set capture facts (overriding the inputs); every pair is also stored as an extra fact."))
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

    @OptionGroup var quietOption: QuietOption
    var quiet: Bool { quietOption.quiet }

    static var formats: [String] { ImporterRegistry.standard.formatIDs }

    func validate() throws {
        if inputs.isEmpty && captureDir == nil { throw ValidationError("give at least one input (or --capture-dir)") }
        if !inputs.isEmpty && captureDir != nil { throw ValidationError("give inputs or --capture-dir, not both") }
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

    func run() throws {
        try runReportingErrors {
            var facts: [String: String] = [:]
            var inputs = self.inputs
            var forceMerge = self.forceMerge
            let capture = try captureDir.map { dir throws(IngestError) in try CaptureDirectory.open(dir) }
            if let capture {
                inputs = capture.inputs
                for (k, v) in capture.meta { facts[k] = v }
                if let why = capture.forceMergeReason, !forceMerge {
                    warn("\(capture.path): --force-merge: \(why)")
                    forceMerge = true
                }
            }
            for m in meta {
                let k = m.firstIndex(of: "=")!
                facts[String(m[..<k])] = String(m[m.index(after: k)...])
            }
            try ingest(inputs, facts: facts, forceMerge: forceMerge)
            // The edu device's programmed DMA, when QEMU's log could not see it: a side input, and ingest again.
            if let capture, !dryRun, let out = output.output, out != "-", let lines = try capture.eduSideInput(for: out)
            {
                let side = CaptureDirectory.eduSideInputPath(for: out)
                let file = try OutputFile(try OutputTarget.resolve(side, inputs: inputs))
                try file.write(lines.joined(separator: "\n") + "\n")
                try file.commit()
                try ingest(inputs + [side], facts: facts, forceMerge: forceMerge)
            }
        }
    }

    private func ingest(_ inputs: [String], facts: [String: String], forceMerge: Bool) throws {
        do {
            let pipeline = IngestPipeline(
                registry: .standard, options: ImportOptions(traceEvents: traceEvents), format: format)
            let plan = try pipeline.plan(try inputs.map { try IngestInput.open($0) })
            let destination =
                dryRun
                ? nil
                : output.output.map {
                    IngestDestination(
                        path: $0, options: .init(level: level, layout: layout ?? ChunkLayout.writerDefault),
                        inputs: inputs + [traceEvents].compactMap { $0 }, noClobber: output.noClobber)
                }
            let meter = ProgressMeter(unit: "events")
            let (report, events) = try ProgressDisplay.run("ingest", meter: meter, quiet: quiet) { _ in
                try pipeline.write(plan, meta: facts, to: destination, progress: meter) { r, n in
                    try check(r, events: n, forceMerge: forceMerge)
                }
            }
            printSummary(report, events: events)
        }
    }

    /// Refuses a result that must not be trusted (``IngestRefusal``): the summary is printed first, so the
    /// evidence is on stderr with the error.
    private func check(_ report: IngestReport, events: UInt64, forceMerge: Bool) throws {
        let (refusal, warnings) = report.verdict(events: events, allowEmpty: allowEmpty, forceMerge: forceMerge)
        for w in warnings { warn(w) }
        guard let refusal else { return }
        if !quiet { var err = StandardError(); print(report.summary(), to: &err) }
        throw refusal
    }

    private func printSummary(_ report: IngestReport, events: UInt64) {
        var err = StandardError()
        if !quiet {
            print(report.summary(), to: &err)
            let target = dryRun ? "(dry run)" : (output.output ?? "")
            print("\(events) events \(dryRun ? "parsed" : "written to") \(target)", to: &err)
        } else {
            for i in report.inputs where i.diagnostics.lostEvents > 0 {
                warn("\(i.path): the input reports \(i.diagnostics.lostEvents) lost events")
            }
            if report.total.skipped > 0 {
                warn("\(report.total.skipped) malformed lines skipped (run without --quiet for file:line)")
            }
        }
    }
}
