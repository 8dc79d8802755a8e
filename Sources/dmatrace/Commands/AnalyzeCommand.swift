import Analysis
import ArgumentParser
import Models
import Reports
import TraceFormat

/// `dmatrace analyze TRACE`: the kernel's CONFIG_DMA_API_DEBUG checks run offline over the recorded stream.
struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract:
            "Run the kernel's DMA-API debug checks offline over a trace: every violation, skipped checks with why.",
        discussion: """
            Re-implements kernel/dma/debug.c (CONFIG_DMA_API_DEBUG) over the recorded dma_map/unmap/alloc/free/sync \
            and dma_mapping_error events, with its exact/containing match and best-fit lookup, and reports every \
            violation in the kernel's own message format, plus the mappings still live when the capture ended. \
            Checks the trace has no data for are listed as skipped with the reason. By default a release or sync of \
            an address never seen mapped is assumed to belong to a mapping made before the capture started (counted, \
            not reported) unless the address was already released inside the capture; --capture-from-start reports it.
            """)

    @Argument(help: "Trace (.dmat or dmatrace JSONL).")
    var trace: String

    @Flag(
        name: .long,
        help: "The capture covers the driver's whole life: report releases and syncs of never-mapped addresses.")
    var captureFromStart = false

    @Option(name: .long, help: "Kernel message era: 4.x, 5.x-6.18 or 6.19 (default: from the trace's kernel release).")
    var era: String?

    @Flag(name: .long, help: "Skip the replay-fidelity check of the recorded scenario (DMA-API checks only).")
    var noFidelity = false

    @Option(name: .long, help: FailOnArgument.help)
    var failOn: FailOnArgument?

    @OptionGroup var output: ReportOutputOptions
    @OptionGroup var quiet: QuietOption

    func validate() throws {
        try Terminal.refuseBinaryInput([trace])
        if let era, DMADebugChecker.Era(rawValue: era) == nil {
            throw ValidationError(
                "--era must be one of \(DMADebugChecker.Era.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let failOn, failOn.isDiffLevel {
            throw ValidationError("--fail-on must be error, warning or note (analyze has no baseline)")
        }
    }

    func run() throws {
        var status: ExitCode?
        try runReportingErrors {
            let opened = try OpenedTrace.open(trace)
            let options = DMADebugChecker.Options(
                captureFromStart: captureFromStart, era: era.flatMap(DMADebugChecker.Era.init(rawValue:)))
            let analysis = try OfflineAnalysis.run(
                opened.source, trace: trace, options: options, fidelity: !noFidelity,
                catalog: try ModelCatalog.builtin())
            let report = Report(analysis: analysis, trace: trace)
            try output.emit(report, inputs: [trace])
            let damage = opened.damage()
            if !damage.isEmpty {
                for d in damage { warn("\(trace): \(d)") }
                status = ExitStatus.damaged
            } else if let failOn, failOn.fails(report: report, diff: nil) {
                status = ExitStatus.findings
            }
        }
        if let status { throw status }
    }
}
