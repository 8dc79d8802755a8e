import Analysis
import ArgumentParser
import Reports
import TraceFormat

/// `dmatrace export --perfetto TRACE`: a Chrome / Perfetto trace-event JSON timeline of a trace.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a trace as a Perfetto / Chrome trace-event JSON timeline, with findings marked.",
        discussion: """
            One thread per device; mappings are async slices from map to unmap (one id each), other events \
            instants; --device, --kind, --from and --to export a part (as `cat` takes them). Findings are \
            global instant events at their first occurrence: those of the offline DMA-API debug checks, plus, with \
            --findings REPORT, those of a report (e.g. a matrix report) for this trace. Open the result in \
            ui.perfetto.dev or chrome://tracing.
            """)

    @Flag(name: .long, help: "Chrome / Perfetto trace-event JSON (the same as --format perfetto).")
    var perfetto = false

    @Option(
        name: .long, help: "Output format: perfetto (Chrome / Perfetto trace-event JSON, the only one).",
        completion: .list(["perfetto"]))
    var format: String?

    @OptionGroup var filterOptions: EventFilterOptions

    @Argument(help: "Trace (.dmat or dmatrace JSONL).")
    var trace: String

    @Option(name: .long, help: "A report JSON whose findings for this trace are marked too.")
    var findings: String?

    @OptionGroup var output: OutputOptions
    @OptionGroup var quiet: QuietOption

    func validate() throws {
        try Terminal.refuseBinaryInput([trace])
        if let format, format != "perfetto" {
            throw ValidationError("unknown export format '\(format)'; known: perfetto")
        }
        guard perfetto || format == "perfetto" else {
            throw ValidationError("choose an export format: --format perfetto (or --perfetto)")
        }
    }

    func run() throws {
        var damaged = false
        try runReportingErrors {
            let opened = try OpenedTrace.open(trace)
            var extra: [Finding] = []
            if let findings {
                let report = try Report.decode(try readWholeFile(findings), file: findings)
                let name = Fingerprint.traceName(trace)
                extra = report.findings.filter { $0.trace == name }
            }
            // One pass over the trace (standard input can be read only once): the DMA-API checks run while
            // the timeline is written; their findings are marked at the end.
            var checker = DMADebugChecker(metadata: opened.source.metadata)
            let filter = try filterOptions.filter(metadata: opened.source.metadata, file: trace)
            try output.streaming(inputs: [trace] + [findings].compactMap { $0 }).run { write in
                try PerfettoExport.export(
                    opened.source, trace: Fingerprint.traceName(trace),
                    findings: { (checker.finish(trace: trace).findings() + extra).sorted(by: Finding.reportOrder) },
                    filter: filter,
                    onEvent: { index, event in
                        if index == 0 { checker.refresh(metadata: opened.source.metadata) }
                        checker.consume(index: index, event)
                    }, write: write)
            }
            let damage = opened.damage()
            for d in damage { warn("\(trace): \(d)") }
            damaged = !damage.isEmpty
        }
        if damaged { throw ExitStatus.damaged }
    }
}
