import Analysis
import ArgumentParser
import Models
import Replay
import Reports
import TraceFormat

/// `dmatrace matrix TRACE... [--kernels ...] [--modes ...]`.
struct MatrixCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matrix",
        abstract: "Outcomes per trace × kernel × mode × device, and the modes in which every selected kernel works.",
        discussion: """
            Each trace is decoded once for all kernel × mode scenarios. Kernels and modes are model ids \
            (comma-separated or repeated; a kernel may carry +off, +pt, +strict or +lazy, a mode +transitional or \
            +modern for virtio devices created with disable-legacy=off or on). By default the kernels are every \
            non-hypothetical model that can run this kind of VM (legacy-only and confidential-guest kernels only \
            when a trace needs them), and the modes every non-hypothetical mode as recorded and with each virtio \
            transport QEMU allows.

            The output leads with the answer: the modes in which every kernel works (DMA isolated, or honestly not), \
            the unsafe alternative (DMA that bypasses an IOMMU the guest trusts is never counted as working), one \
            kernel × mode grid per trace, what blocks which modes, and what a device property would change. \
            --details prints every device of every cell instead.

            \(ExitStatus.helpText)
            """)

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
    @OptionGroup var output: ReplayOutputOptions
    @OptionGroup var scale: ScaleOptions
    @OptionGroup var quiet: QuietOption

    func validate() throws {
        if traces.isEmpty { throw ValidationError("give at least one trace") }
        try Terminal.refuseBinaryInput(traces)
        if scale.shard != nil && output.format != nil || scale.shard != nil && output.baseline.baseline != nil {
            throw ValidationError("--shard writes a part for `dmatrace merge`; give --format/--baseline to merge")
        }
    }

    func run() throws {
        var damaged = false
        var baselineFails = false
        try runReportingErrors {
            let catalog = try models.catalog()
            let split = { (a: [String]) in a.flatMap { $0.split(separator: ",").map(String.init) } }
            let metadata = try traces.filter { $0 != "-" }.map {
                try OpenedTrace.open($0, decodeThreads: 1).source.metadata
            }
            let axis = MatrixAxis.make(
                catalog: catalog, kernels: kernelArgs.isEmpty ? nil : split(kernelArgs),
                modes: modeArgs.isEmpty ? nil : split(modeArgs),
                variants: !noVariants, metadata: metadata)
            let scenarios = try axis.scenarios(catalog: catalog)
            // Traces replay in parallel; a single trace gets a second thread for its scenarios instead.
            let options = ReplayOptions(
                hypotheses: Set(hypotheses.hypotheses),
                scenarioThreads: traces.count == 1 && scale.threadCount >= 2 ? 2 : 1)
            let shard = try scale.resolvedShard()
            let plan = WorkPlan(traces: traces.count, scenarios: scenarios.count, shard: shard)
            // Progress in traces done, or for a single trace in events replayed.
            let jobs = plan.scenarios.filter { !$0.isEmpty }.count
            let meter = jobs == 1 ? ProgressMeter(unit: "events") : ProgressMeter(unit: "traces", total: UInt64(jobs))
            let replayed = try ProgressDisplay.run("matrix", meter: meter, quiet: quiet.quiet) { shown in
                try ParallelReplay.run(
                    traces: traces, plan: plan, threads: scale.threadCount, progress: jobs == 1 ? nil : meter
                ) { t, subset, source in
                    let (evidence, inferred) = try RecordedScenario.inferWithEvidence(source, catalog: catalog)
                    let counted = shown && jobs == 1 ? meter.counting(source) : source
                    return try ReplayEngine(
                        scenarios: subset.map { scenarios[$0] }, recorded: try? inferred.get(), options: options,
                        evidence: evidence
                    ).run(counted, tracePath: t)
                }
            }
            for r in replayed { for w in r.warnings { warn(w) } }
            damaged = replayed.contains { !$0.warnings.isEmpty }
            if let shard {
                let pieces = replayed.map {
                    ShardPart.Piece(trace: $0.index, scenarios: plan.scenarios[$0.index], result: $0.result)
                }
                try output.write(
                    try ShardPart(
                        shard: shard, command: "matrix", traces: traces, scenarios: scenarios.map(\.id),
                        axis: axis, pieces: pieces
                    ).json(), inputs: traces)
                return
            }
            let results = replayed.map(\.result)
            if output.wantsReport {
                baselineFails = try output.emitReport(command: "matrix", results: results, inputs: traces, axis: axis)
            } else {
                if output.wantsReplayJSON || details {
                    let m = ReplayMatrix(results: results, kernels: axis.kernels, modes: axis.modes)
                    try output.wantsReplayJSON
                        ? output.write(try ReportJSON.string(m), inputs: traces)
                        : output.writeText(m.text(), inputs: traces)
                } else if let answer = Report(command: "matrix", results: results, axis: axis).matrix?.answer {
                    try output.writeText(AnswerText.render(answer, colour: false), inputs: traces)
                }
                baselineFails = output.fails(command: "matrix", results: results, axis: axis)
            }
        }
        if damaged { throw ExitStatus.damaged }
        if baselineFails { throw ExitStatus.findings }
    }
}
