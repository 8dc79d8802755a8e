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

    @OptionGroup var analysis: AnalyzeOptions
    @OptionGroup var output: ReportOutputOptions
    @OptionGroup var quiet: QuietOption

    func run() throws {
        var status: ExitCode?
        let trace = analysis.trace
        try runReportingErrors {
            let opened = try OpenedTrace.open(trace)
            let result = try OfflineAnalysis.run(
                opened.source, trace: trace, options: analysis.checker, fidelity: !analysis.noFidelity,
                catalog: try ModelCatalog.builtin())
            let report = Report(analysis: result, trace: trace)
            try output.emit(report, inputs: [trace])
            if warnDamage(opened, trace) {
                status = ExitStatus.damaged
            } else if let failOn = analysis.failOn, failOn.fails(report: report, diff: nil) {
                status = ExitStatus.findings
            }
        }
        if let status { throw status }
    }
}
