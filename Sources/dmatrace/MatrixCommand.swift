import ArgumentParser
import Models
import Replay
import TraceFormat

/// `dmatrace matrix TRACE... [--kernels ...] [--modes ...]`.
struct MatrixCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matrix",
        abstract: "Outcomes per trace × kernel × mode × device, and the modes in which every selected kernel works.",
        discussion: """
            Each trace is decoded once for all kernel × mode scenarios. Kernels and modes are model ids \
            (comma-separated or repeated; a kernel may carry +off, +pt, +strict or +lazy); the default is every \
            non-hypothetical model.

            \(ExitStatus.helpText)
            """)

    @Argument(help: "Traces (.dmat or .jsonl).") var traces: [String]
    @Option(name: .customLong("kernels"), help: "Kernel model ids.") var kernelArgs: [String] = []
    @Option(name: .customLong("modes"), help: "QEMU mode model ids.") var modeArgs: [String] = []
    @Option(name: .customLong("models"), help: "A directory of user model files (repeatable).") var modelDirs: [String] = []
    @Option(name: .customLong("hypothesis"), help: "Switch on an opt-in hypothesis (repeatable).") var hypotheses: [String] = []
    @OptionGroup var output: ReplayOutputOptions
    @OptionGroup var scale: ScaleOptions

    func validate() throws {
        if traces.isEmpty { throw ValidationError("give at least one trace") }
        if scale.shard != nil && (output.wantsReport || output.json) {
            throw ValidationError("--shard writes a part for `dmatrace merge`; give --format/--baseline to merge")
        }
    }

    func run() throws {
        var damaged = false
        var baselineFails = false
        try runReportingErrors {
            let catalog = try ReplaySupport.catalog(modelDirs)
            let split = { (a: [String]) in a.flatMap { $0.split(separator: ",").map(String.init) } }
            let kernels = kernelArgs.isEmpty ? catalog.kernelIDs.filter { !catalog.kernels[$0]!.hypothesis } : split(kernelArgs)
            let modes = modeArgs.isEmpty ? catalog.modeIDs.filter { !catalog.modes[$0]!.hypothesis } : split(modeArgs)
            let scenarios = try kernels.flatMap { k in try modes.map { try Scenario.parse("\(k)@\($0)", catalog: catalog) } }
            // Traces replay in parallel; a single trace gets a second thread for its scenarios instead.
            let options = ReplayOptions(hypotheses: Set(hypotheses),
                                        scenarioThreads: traces.count == 1 && scale.threadCount >= 2 ? 2 : 1)
            let shard = try scale.resolvedShard()
            let plan = WorkPlan(traces: traces.count, scenarios: scenarios.count, shard: shard)
            let replayed = try ParallelReplay.run(traces: traces, plan: plan, threads: scale.threadCount) { t, subset, source in
                let (evidence, inferred) = try ReplaySupport.recorded(source, catalog: catalog)
                return try ReplayEngine(scenarios: subset.map { scenarios[$0] }, recorded: try? inferred.get(), options: options,
                                        evidence: evidence).run(source, tracePath: t)
            }
            for r in replayed { for w in r.warnings { warn(w) } }
            damaged = replayed.contains { !$0.warnings.isEmpty }
            if let shard {
                let pieces = replayed.map { ShardPart.Piece(trace: $0.index, scenarios: plan.scenarios[$0.index], result: $0.result) }
                try output.write(try ShardPart(shard: shard, command: "matrix", traces: traces, scenarios: scenarios.map(\.id),
                                               pieces: pieces).json())
                return
            }
            let results = replayed.map(\.result)
            if output.wantsReport {
                baselineFails = try output.emitReport(command: "matrix", results: results)
            } else {
                let m = ReplayMatrix(results: results, kernels: kernels, modes: modes)
                try output.write(output.json ? try ReplaySupport.json(m) + "\n" : m.text())
            }
        }
        if damaged { throw ExitStatus.damaged }
        if baselineFails { throw ExitStatus.findings }
    }
}
