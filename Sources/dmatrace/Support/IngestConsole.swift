import TraceFormat
import TraceIngest

/// Tells the user on standard error what an ``IngestRequest`` does: warnings, progress on a terminal, the
/// summary (with `--quiet` only the lost events and skipped lines), and the evidence of a refused result.
struct IngestConsole: IngestObserver {
    var quiet: Bool

    func warning(_ message: String) { warn(message) }

    func progress<T>(_ meter: ProgressMeter, _ body: () throws -> T) throws -> T {
        try ProgressDisplay.run("ingest", meter: meter, quiet: quiet) { _ in try body() }
    }

    func refused(_ report: IngestReport) {
        if !quiet { var err = StandardError(); print(report.summary(), to: &err) }
    }

    func finished(_ report: IngestReport, events: UInt64, target: String?) {
        var err = StandardError()
        if !quiet {
            print(report.summary(), to: &err)
            print("\(events) events \(target == nil ? "parsed" : "written to") \(target ?? "(dry run)")", to: &err)
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
