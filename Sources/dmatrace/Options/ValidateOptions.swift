import ArgumentParser
import FoundationEssentials
import Models
import Replay
import Reports

/// What `validate` compares (``CrossValidation``), how it prints it, and the file that must hold it.
struct ValidateOptions: ParsableArguments {
    @Argument(help: "The captures (.dmat or .jsonl), at least two.")
    var traces: [String] = []

    @Option(
        name: .long, parsing: .upToNextOption,
        help:
            "Replay the captures only under the recorded scenarios of these captures (cross-version predictions: captures of one kernel and QEMU under the scenarios of captures of others). Without it, every ordered pair of the captures."
    )
    var under: [String] = []

    @Option(help: "Exit 1 unless FILE contains the printed tables verbatim (e.g. traces/README.md).")
    var check: String?

    /// The output format.
    enum Format: String, ExpressibleByArgument, CaseIterable { case markdown, json }

    @Option(help: "Output format: markdown (the tables), or json (the per-pair metrics).")
    var format: Format = .markdown

    /// The old spelling of `--format json`.
    @Flag(help: .hidden)
    var json = false

    func validate() throws {
        if under.isEmpty && traces.count < 2 {
            throw ValidationError("give at least two traces (or some traces and --under)")
        }
        if !under.isEmpty && traces.isEmpty {
            throw ValidationError("give the traces to replay under the --under captures' scenarios")
        }
        try Terminal.refuseBinaryInput(traces + under)
    }

    /// Every file the command reads.
    var inputs: [String] { traces + under + [check].compactMap { $0 } }

    /// The captures at `paths`, their damage warned of.
    func load(_ paths: [String]) throws -> [CrossValidation.Capture] {
        try paths.map { path in
            let (capture, damage) = try CrossValidation.Capture.load(path)
            for d in damage { warn("\(path): \(d)") }
            return capture
        }
    }

    /// The validation of ``traces`` under ``under`` (or under each other).
    func run(catalog: ModelCatalog) throws -> CrossValidation.Result {
        let sources = try load(traces)
        return try CrossValidation.run(sources, under: under.isEmpty ? sources : try load(under), catalog: catalog)
    }

    /// `result` as printed: JSON, or the Markdown tables.
    func text(_ result: CrossValidation.Result) throws -> String {
        json || format == .json ? try ReportJSON.text(result) : CrossValidation.markdown(result)
    }

    /// False when `--check FILE` does not contain `text` (warned of).
    func checkPasses(_ text: String) throws -> Bool {
        guard let check, !(try String(contentsOfFile: check, encoding: .utf8)).contains(text) else { return true }
        warn("validate: the measured tables differ from the ones in \(check)")
        return false
    }
}
