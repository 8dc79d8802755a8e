import Analysis
import ArgumentParser
import Replay
import Reports
import TraceFormat

/// `--format` of `replay` and `matrix`: a report format, or `replay-json`, the replay's own result (the
/// Replay contract tools read: `ReplayResult`, and Analysis' `ReplayMatrix`).
enum ReplayFormatArgument: ExpressibleByArgument, Equatable {
    case report(ReportFormat)
    case replayJSON

    init?(argument: String) {
        if argument == "replay-json" {
            self = .replayJSON
        } else if let f = ReportFormat(rawValue: argument) {
            self = .report(f)
        } else {
            return nil
        }
    }

    static var allValueStrings: [String] { ReportFormat.allCases.map(\.rawValue) + ["replay-json"] }
    static var defaultCompletionKind: CompletionKind { .list(allValueStrings) }
}

/// Output options of `replay` and `matrix`: the replay's own views (text; `--format replay-json`) or, with a
/// report `--format`, the report (``Report``) through the Reports renderers; `--baseline` turns the report into a diff.
struct ReplayOutputOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Output format: text, json, junit, sarif, markdown or html (the report), or replay-json (the replay's own result, sorted keys: the Replay contract, for tools).",
            discussion: "Without --format (and without --baseline) the replay's own text view is printed."))
    var format: ReplayFormatArgument?

    @OptionGroup var output: OutputOptions

    @OptionGroup var baseline: BaselineOptions

    func validate() throws {
        if format == .replayJSON && baseline.baseline != nil {
            throw ValidationError(
                "--baseline compares reports: give a report --format (text, json, junit, sarif, markdown or html)")
        }
    }

    /// The report format when the report (not the replay's own view) is printed.
    var reportFormat: ReportFormat? {
        if case let .report(f)? = format { return f }
        return baseline.baseline != nil ? .text : nil
    }

    /// True when the report (not the replay's own view) is printed.
    var wantsReport: Bool { reportFormat != nil }

    /// True with `--format replay-json`.
    var wantsReplayJSON: Bool { format == .replayJSON }

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
    func emitReport(command: String, results: [ReplayResult], inputs: [String], axis: MatrixAxis? = nil) throws -> Bool
    {
        let (report, fail) = try baseline.apply(to: Report(command: command, results: results, axis: axis))
        try write(try (reportFormat ?? .text).renderer(colour: false).render(report), inputs: inputs)
        return fail
    }

    /// Writes what `matrix` prints for the traces `replayed` by `run`: a shard's part for `dmatrace merge`, or
    /// (``emitMatrix(_:axis:details:inputs:)``) the report, the replay's view or the answer; returns whether
    /// `--fail-on` fails.
    func emitMatrix(run: MatrixRun, replayed: [ReplayedTrace], details: Bool) throws -> Bool {
        guard let shard = run.shard else {
            return try emitMatrix(replayed.map(\.result), axis: run.axis, details: details, inputs: run.traces)
        }
        try write(try ShardPart(run: run, shard: shard, replayed: replayed).json(), inputs: run.traces)
        return false
    }

    /// Writes what `matrix` prints for `results`: the report (a report `--format`, or `--baseline`), the
    /// ``ReplayMatrix`` (`replay-json`, or its text with `details`), or the answer; returns whether `--fail-on` fails.
    func emitMatrix(_ results: [ReplayResult], axis: MatrixAxis, details: Bool, inputs: [String]) throws -> Bool {
        if wantsReport { return try emitReport(command: "matrix", results: results, inputs: inputs, axis: axis) }
        if wantsReplayJSON || details {
            let m = ReplayMatrix(results: results, kernels: axis.kernels, modes: axis.modes)
            try wantsReplayJSON
                ? write(try ReportJSON.string(m), inputs: inputs) : writeText(m.text(), inputs: inputs)
        } else if let answer = Report(command: "matrix", results: results, axis: axis).matrix?.answer {
            try writeText(AnswerText.render(answer, colour: false), inputs: inputs)
        }
        return fails(command: "matrix", results: results, axis: axis)
    }

    /// Writes what `replay` prints for `result`: the report, the result's JSON (`replay-json`) or its text;
    /// returns whether `--fail-on` fails.
    func emitReplay(_ result: ReplayResult, inputs: [String]) throws -> Bool {
        if wantsReport { return try emitReport(command: "replay", results: [result], inputs: inputs) }
        try wantsReplayJSON
            ? write(try ReportJSON.string(result), inputs: inputs) : writeText(result.text(), inputs: inputs)
        return fails(command: "replay", results: [result])
    }

    /// With the replay's own view: whether `--fail-on` (a severity) fails on the report of `results`.
    func fails(command: String, results: [ReplayResult], axis: MatrixAxis? = nil) -> Bool {
        guard let failOn = baseline.failOn else { return false }
        return failOn.fails(report: Report(command: command, results: results, axis: axis), diff: nil)
    }
}
