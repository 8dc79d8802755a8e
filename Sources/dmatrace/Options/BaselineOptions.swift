import ArgumentParser
import Reports
import TraceFormat

/// `--baseline FILE` and `--fail-on` for commands that produce a report (`replay`, `matrix`): add
/// `@OptionGroup var baseline: BaselineOptions`, then `let (report, fail) = try baseline.apply(to: report)`,
/// render `report`, and `throw ExitStatus.findings` when `fail`.
struct BaselineOptions: ParsableArguments {
    @Option(name: .long, help: "Compare with this baseline report (JSON): the output becomes a diff report.")
    var baseline: String?

    @Option(name: .customLong("fail-on"), help: FailOnArgument.help)
    var failOn: FailOnArgument?

    @Flag(
        help:
            "With --baseline: report the diff even when this run covers fewer traces, kernels, modes or devices than the baseline (refused by default: exit 2)."
    )
    var allowCoverageChange = false

    func validate() throws {
        if let failOn, failOn.isDiffLevel, baseline == nil {
            throw ValidationError("--fail-on new, changed or any needs --baseline")
        }
    }

    /// `report` itself without a baseline; otherwise the diff report against the baseline, and whether it
    /// contains what `--fail-on` fails on. `reportName` labels the new side in the diff.
    func apply(to report: Report, reportName: String = "current run") throws -> (report: Report, fail: Bool) {
        guard let baseline else { return (report, failOn?.fails(report: report, diff: nil) ?? false) }
        let base = try Report.decode(try readWholeFile(baseline), file: baseline)
        let diff = try Diff.report(
            base: base, new: report, basePath: baseline, newPath: reportName, allowCoverageChange: allowCoverageChange)
        if let d = diff.diff, d.coverageShrank {
            warn("this run covers less than the baseline: \((d.coverageLost ?? []).joined(separator: ", ")) missing")
        }
        let fail = failOn?.fails(report: report, diff: diff) ?? false
        return (diff, fail)
    }
}
