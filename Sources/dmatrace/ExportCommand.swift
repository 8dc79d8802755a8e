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
            One thread per device; mappings are slices from map to unmap, other events instants. Findings are \
            global instant events at their first occurrence: those of the offline DMA-API debug checks, plus, with \
            --findings REPORT, those of a report (e.g. a matrix report) for this trace. Open the result in \
            ui.perfetto.dev or chrome://tracing.
            """)

    @Flag(name: .long, help: "Chrome / Perfetto trace-event JSON (the only export format).")
    var perfetto = false

    @Argument(help: "Trace (.dmat or dmatrace JSONL).")
    var trace: String

    @Option(name: .long, help: "A report JSON whose findings for this trace are marked too.")
    var findings: String?

    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp(OutputHelp.output, discussion: OutputHelp.discussion))
    var output: String?

    @Flag(help: OutputHelp.noClobber)
    var noClobber = false

    func validate() throws {
        guard perfetto else { throw ValidationError("choose an export format: --perfetto") }
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
            try StreamingOutput(path: output, inputs: [trace] + [findings].compactMap { $0 }, noClobber: noClobber).run { write in
                try PerfettoExport.export(
                    opened.source, trace: Fingerprint.traceName(trace),
                    findings: { (checker.finish(trace: trace).findings() + extra).sorted(by: Finding.reportOrder) },
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
