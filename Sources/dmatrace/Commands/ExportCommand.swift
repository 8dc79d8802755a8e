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

    @OptionGroup var selection: ExportOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var quiet: QuietOption

    func run() throws {
        var damaged = false
        let (trace, findings) = (selection.trace, selection.findings)
        try runReportingErrors {
            let opened = try OpenedTrace.open(trace)
            let report = try findings.map { try Report.decode(try readWholeFile($0), file: $0) }
            let filter = try selection.filterOptions.filter(metadata: opened.source.metadata, file: trace)
            try output.streaming(inputs: [trace] + [findings].compactMap { $0 }).run { write in
                try PerfettoExport.exportWithChecks(
                    opened.source, path: trace, report: report, filter: filter, write: write)
            }
            damaged = warnDamage(opened, trace)
        }
        if damaged { throw ExitStatus.damaged }
    }
}
