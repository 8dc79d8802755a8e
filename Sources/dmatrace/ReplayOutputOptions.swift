import Analysis
import ArgumentParser
import Replay
import Reports
import TraceFormat

/// Output options of `replay` and `matrix`: the replay's own views (text, `--json`) or, with `--format`, the
/// report (``Report``) through the Reports renderers; `--baseline` turns the report into a diff.
struct ReplayOutputOptions: ParsableArguments {
    @Flag(help: "Print the replay result as JSON (sorted keys): the Replay contract, for tools.")
    var json = false

    @Option(name: .long, help: "Print the report instead, in this format: text, json, junit, sarif, markdown or html.")
    var format: ReportFormatArgument?

    @OptionGroup var output: OutputOptions

    @OptionGroup var baseline: BaselineOptions

    func validate() throws {
        if json && format != nil { throw ValidationError("--json and --format are exclusive") }
    }

    /// True when the report (not the replay's own view) is printed.
    var wantsReport: Bool { format != nil || baseline.baseline != nil }

    /// Writes `text` to `-o` or standard output; `inputs` are the command's traces (the baseline is added here).
    func write(_ text: String, inputs: [String]) throws {
        try output.write(text, inputs: inputs + [baseline.baseline].compactMap { $0 })
    }

    /// The replay's own text view (not JSON, not a report), escaped (``TextSafety``, newlines kept).
    func writeText(_ text: String, inputs: [String]) throws {
        try write(TextSafety.escapedKeepingNewlines(text), inputs: inputs)
    }

    /// Builds the report for `results`, applies `--baseline`, renders and writes it; returns whether
    /// `--fail-on` fails.
    func emitReport(command: String, results: [ReplayResult], inputs: [String], axis: MatrixAxis? = nil) throws -> Bool {
        let (report, fail) = try baseline.apply(to: Report(command: command, results: results, axis: axis))
        try write(try (format?.value ?? .text).renderer(colour: false).render(report), inputs: inputs)
        return fail
    }
}
