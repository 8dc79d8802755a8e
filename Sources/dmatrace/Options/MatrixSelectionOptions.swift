import Analysis
import ArgumentParser
import Models

/// What `matrix` replays: the traces, the kernel and mode axis, models and hypotheses (``MatrixRun``).
struct MatrixSelectionOptions: ParsableArguments {
    @Argument(help: "Traces (.dmat or .jsonl).") var traces: [String]
    @Option(
        name: .customLong("kernels"), help: "Kernel model ids, optionally KERNEL:RELEASE.",
        completion: ModelCompletion.kernels)
    var kernelArgs: [String] = []
    @Option(
        name: .customLong("modes"),
        help: "QEMU mode model ids, optionally MODE:QEMU[/MACHINE] (e.g. qemu-amd-iommu:10.0).",
        completion: ModelCompletion.modes)
    var modeArgs: [String] = []
    @OptionGroup var models: ModelOptions
    @OptionGroup var hypotheses: HypothesisOptions
    @Flag(help: "Print every device of every cell (the per-device list) instead of the answer and grid.") var details =
        false
    @Flag(name: .customLong("no-variants"), help: "Try the default modes only with the devices as recorded.")
    var noVariants = false

    /// The checks of `matrix`, in the order its usage errors are reported.
    func validate(output: ReplayOutputOptions, scale: ScaleOptions) throws {
        if traces.isEmpty { throw ValidationError("give at least one trace") }
        try Terminal.refuseBinaryInput(traces)
        if scale.shard != nil && output.format != nil || scale.shard != nil && output.baseline.baseline != nil {
            throw ValidationError("--shard writes a part for `dmatrace merge`; give --format/--baseline to merge")
        }
    }

    /// The run: the axis for the traces, and the shard's (or the whole matrix's) work.
    func run(catalog: ModelCatalog, scale: ScaleOptions) throws -> MatrixRun {
        try MatrixRun(
            traces: traces, catalog: catalog, kernels: kernelArgs, modes: modeArgs, variants: !noVariants,
            hypotheses: hypotheses.hypotheses, threads: scale.threadCount, shard: try scale.resolvedShard())
    }
}
