import Analysis
import ArgumentParser

/// What `analyze` checks (``OfflineAnalysis``) and what it fails on.
struct AnalyzeOptions: ParsableArguments {
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

    /// The DMA-API debug checker's options.
    var checker: DMADebugChecker.Options {
        DMADebugChecker.Options(
            captureFromStart: captureFromStart, era: era.flatMap(DMADebugChecker.Era.init(rawValue:)))
    }
}
