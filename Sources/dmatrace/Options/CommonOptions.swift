import Analysis
import ArgumentParser
import Foundation
import Models
import Reports

/// `-o/--output FILE` and `--no-clobber`: the one declaration of every command that writes a file.
struct OutputOptions: ParsableArguments {
    @Option(
        name: [.customShort("o"), .customLong("output")],
        help: ArgumentHelp(OutputHelp.output, discussion: OutputHelp.discussion))
    var output: String?

    @Flag(help: OutputHelp.noClobber)
    var noClobber = false

    /// ``StreamingOutput`` to ``output`` (standard output when nil); `inputs` are the files the command reads.
    func streaming(inputs: [String]) -> StreamingOutput {
        StreamingOutput(path: output, inputs: inputs, noClobber: noClobber)
    }

    /// Writes `text` to ``output`` or standard output.
    func write(_ text: String, inputs: [String]) throws {
        try streaming(inputs: inputs).run { write in try write(text) }
    }
}

/// `--models DIR` (repeatable): user model directories beside the built-in models.
struct ModelOptions: ParsableArguments {
    @Option(
        name: .customLong("models"),
        help: ArgumentHelp("A directory of user model files (repeatable).", valueName: "dir"))
    var directories: [String] = []

    /// The catalog: built-ins plus the `--models` directories.
    func catalog() throws -> ModelCatalog { try ModelCatalog.load(userDirectories: directories) }
}

/// `--hypothesis ID` (repeatable) of `replay` and `matrix`.
struct HypothesisOptions: ParsableArguments {
    @Option(name: .customLong("hypothesis"), help: "Switch on an opt-in hypothesis for every scenario (repeatable).")
    var hypotheses: [String] = []
}

/// `--threads N` (1...256): the one range of every command that runs threads.
struct ThreadsOption: ParsableArguments {
    static let range = 1...256

    @Option(help: "Worker threads, 1...256 (default: DMATRACE_THREADS, else the number of online CPUs).")
    var threads: Int?

    func validate() throws {
        if let threads, !Self.range.contains(threads) { throw ValidationError("--threads must be in 1...256") }
    }

    /// `--threads`, else `DMATRACE_THREADS` when in range, else `fallback`.
    func count(default fallback: Int) -> Int {
        if let threads { return threads }
        if let v = ProcessInfo.processInfo.environment["DMATRACE_THREADS"], let n = Int(v), Self.range.contains(n) {
            return n
        }
        return fallback
    }
}

/// The one `--fail-on` vocabulary: `new`, `changed`, `any` (against a baseline: findings new, changed or
/// either) and `error`, `warning`, `note` (a finding of that severity or worse). Each command says which it takes.
enum FailOnArgument: ExpressibleByArgument, Equatable {
    case diff(FailOn)
    case severity(FindingSeverity)

    init?(argument: String) {
        if let v = FailOn(rawValue: argument) {
            self = .diff(v)
        } else if let s = FindingSeverity(rawValue: argument) {
            self = .severity(s)
        } else {
            return nil
        }
    }

    static var allValueStrings: [String] { FailOn.allCases.map(\.rawValue) + ["error", "warning", "note"] }
    static var defaultCompletionKind: CompletionKind { .list(allValueStrings) }

    static let help = ArgumentHelp(
        "Exit 1 on: new, changed or any (findings against --baseline), or error, warning or note (a finding of that severity or worse).",
        valueName: "level")

    /// Whether the run fails: a diff level on the diff report's summary (never without one), a severity on the
    /// findings of `report` (the run's own report, not the diff).
    func fails(report: Report, diff: Report?) -> Bool {
        switch self {
        case let .diff(v): diff?.diff?.fails(on: v) ?? false
        case let .severity(level): report.findings.contains { $0.severity >= level }
        }
    }

    var isDiffLevel: Bool { if case .diff = self { true } else { false } }
}

/// Shell completions of model ids from the built-in model catalogue (`dmatrace --generate-completion-script`).
enum ModelCompletion {
    static let kernels = CompletionKind.custom { _, _, _ in (try? ModelCatalog.builtin())?.kernelIDs ?? [] }
    static let modes = CompletionKind.custom { _, _, _ in (try? ModelCatalog.builtin())?.modeIDs ?? [] }
    /// `KERNEL@` first, then `KERNEL@MODE` once the word has its `@`.
    static let scenario = CompletionKind.custom { _, _, prefix in
        guard let catalog = try? ModelCatalog.builtin() else { return [] }
        if let at = prefix.firstIndex(of: "@") {
            let kernel = prefix[..<at]
            return catalog.modeIDs.map { "\(kernel)@\($0)" }
        }
        return catalog.kernelIDs.map { "\($0)@" }
    }
}
