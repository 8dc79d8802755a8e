import Analysis
import ArgumentParser
import Foundation
import Models
import Replay
import Reports
import SystemPackage
import TraceFormat

/// Shared plumbing of `replay`, `matrix` and `models`.
enum ReplaySupport {
    /// Runs `engine` on the trace at `path` (`.dmat` or `.jsonl`); returns the result and whether the trace
    /// was damaged (exit status 3), after warning about each damage.
    static func replay(_ path: String, engine: (any EventSource) throws -> ReplayResult) throws -> (ReplayResult, damaged: Bool) {
        let trace = try OpenedTrace.open(path)
        let result = try engine(trace.source)
        let damage = trace.damage()
        for d in damage { warn("\(path): \(d)") }
        return (result, !damage.isEmpty)
    }

    /// The evidence pass over `source` when its metadata leaves scenario facts open (``ScenarioEvidence/needed(_:)``),
    /// and the recorded scenario inferred from the metadata completed by it.
    static func recorded(_ source: any EventSource, catalog: ModelCatalog) throws
        -> (evidence: ScenarioEvidence?, recorded: Result<Scenario, ModelError>)
    {
        let evidence = ScenarioEvidence.needed(source.metadata) ? try ScenarioEvidence.scan(source) : nil
        let metadata = evidence.map { $0.apply(to: source.metadata) } ?? source.metadata
        return (evidence, RecordedScenario.infer(metadata: metadata, catalog: catalog))
    }

    /// The catalog: built-ins plus `--models` directories.
    static func catalog(_ dirs: [String]) throws -> ModelCatalog {
        try ModelCatalog.load(userDirectories: dirs)
    }

    /// JSON with sorted keys (deterministic).
    static func json(_ value: some Encodable) throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try enc.encode(value), as: UTF8.self)
    }
}

/// Output options of `replay` and `matrix`: the replay's own views (text, `--json`) or, with `--format`, the
/// report (``Report``) through the Reports renderers; `--baseline` turns the report into a diff.
struct ReplayOutputOptions: ParsableArguments {
    @Flag(help: "Print the replay result as JSON (sorted keys): the Replay contract, for tools.")
    var json = false

    @Option(name: .long, help: "Print the report instead, in this format: text, json, junit, sarif, markdown or html.")
    var format: ReportFormatArgument?

    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp(OutputHelp.output, discussion: OutputHelp.discussion))
    var output: String?

    @Flag(help: OutputHelp.noClobber)
    var noClobber = false

    @OptionGroup var baseline: BaselineOptions

    func validate() throws {
        if json && format != nil { throw ValidationError("--json and --format are exclusive") }
    }

    /// True when the report (not the replay's own view) is printed.
    var wantsReport: Bool { format != nil || baseline.baseline != nil }

    /// Writes `text` to ``output`` or standard output (``StreamingOutput``); `inputs` are the command's
    /// traces (the baseline is added here).
    func write(_ text: String, inputs: [String]) throws {
        try StreamingOutput(path: output, inputs: inputs + [baseline.baseline].compactMap { $0 }, noClobber: noClobber)
            .run { write in try write(text) }
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
