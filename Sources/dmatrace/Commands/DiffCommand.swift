import ArgumentParser
import Reports
import TraceFormat

/// `dmatrace diff BASE NEW`: compares two report JSON files by finding fingerprint.
struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare two report JSON files: new, fixed and changed findings by fingerprint.",
        discussion: """
            Findings are matched by their fingerprint (trace name, scenario, device, class, key and rule; no \
            timestamps or event indices), so re-ingesting or re-running a capture keeps them stable. A finding \
            is changed when its count, severity or predicted log lines differ. Exit status 1 only with \
            --fail-on and a matching change. The text form leads with the answer on both sides ("modes that work \
            for every kernel: {a, b} → {b}") and lists only new, fixed and changed findings (--all: every one).
            """)

    @Argument(help: "Baseline report (JSON, from --format json).")
    var base: String

    @Argument(help: "New report (JSON).")
    var new: String

    @Option(name: .long, help: FailOnArgument.help)
    var failOn: FailOnArgument?

    @Flag(
        help:
            "Report the diff even when the new report covers fewer traces, kernels, modes or devices than the base (refused by default: exit 2)."
    )
    var allowCoverageChange = false

    @Flag(help: "Text: also list the unchanged findings and the whole answer grid (by default only what changed).")
    var all = false

    @OptionGroup var output: ReportOutputOptions
    @OptionGroup var quiet: QuietOption

    func run() throws {
        var fail = false
        try runReportingErrors {
            let b = try Report.decode(try readWholeFile(base), file: base)
            let n = try Report.decode(try readWholeFile(new), file: new)
            let report = try Diff.report(
                base: b, new: n, basePath: base, newPath: new, allowCoverageChange: allowCoverageChange)
            if let d = report.diff, d.coverageShrank {
                warn(
                    "the new report covers less than the base: \((d.coverageLost ?? []).joined(separator: ", ")) missing"
                )
            }
            try output.emit(report, inputs: [base, new], showUnchanged: all)
            if let failOn, failOn.fails(report: n, diff: report) { fail = true }
        }
        if fail { throw ExitStatus.findings }
    }
}
