import Models
import Replay
import TraceFormat

/// One `dmatrace matrix` run: the axis for the traces, its scenarios, the work of the whole matrix or of one
/// shard (``WorkPlan``), and the replay of that work (``ParallelReplay``; tools/scale/README.md).
public struct MatrixRun: Sendable {
    /// Trace paths, as given.
    public var traces: [String]
    public var axis: MatrixAxis
    /// Every `kernel@mode` scenario of the axis, in unit order.
    public var scenarios: [Scenario]
    public var shard: ShardSpec?
    public var plan: WorkPlan
    public var options: ReplayOptions
    /// Threads for traces in parallel.
    public var threads: Int

    /// The run over `traces`: `kernels` and `modes` as given (comma-separated or repeated; empty: the default
    /// axis for the traces' metadata), `variants` false to try modes only as recorded. A single trace gets a second
    /// thread for its scenarios instead of a second trace.
    public init(
        traces: [String], catalog: ModelCatalog, kernels: [String], modes: [String], variants: Bool,
        hypotheses: [String], threads: Int, shard: ShardSpec?
    ) throws {
        let split = { (a: [String]) in a.flatMap { $0.split(separator: ",").map(String.init) } }
        let metadata = try traces.filter { $0 != "-" }.map {
            try OpenedTrace.open($0, decodeThreads: 1).source.metadata
        }
        self.traces = traces
        self.axis = MatrixAxis.make(
            catalog: catalog, kernels: kernels.isEmpty ? nil : split(kernels),
            modes: modes.isEmpty ? nil : split(modes),
            variants: variants, metadata: metadata)
        self.scenarios = try axis.scenarios(catalog: catalog)
        self.options = ReplayOptions(
            hypotheses: Set(hypotheses), scenarioThreads: traces.count == 1 && threads >= 2 ? 2 : 1)
        self.threads = threads
        self.shard = shard
        self.plan = WorkPlan(traces: traces.count, scenarios: scenarios.count, shard: shard)
    }

    /// Traces with work in this run.
    public var jobs: Int { plan.scenarios.filter { !$0.isEmpty }.count }

    /// What progress counts: traces done, or for a single trace the events replayed.
    public func meter() -> ProgressMeter {
        jobs == 1 ? ProgressMeter(unit: "events") : ProgressMeter(unit: "traces", total: UInt64(jobs))
    }

    /// Replays the planned units, each trace with its recorded scenario inferred; `meter` (from ``meter()``) counts
    /// when `counting`.
    public func replay(catalog: ModelCatalog, meter: ProgressMeter, counting: Bool) throws -> [ReplayedTrace] {
        let (scenarios, options, single) = (self.scenarios, self.options, jobs == 1)
        return try ParallelReplay.run(traces: traces, plan: plan, threads: threads, progress: single ? nil : meter) {
            t, subset, source in
            let (evidence, inferred) = try RecordedScenario.inferWithEvidence(source, catalog: catalog)
            let counted = counting && single ? meter.counting(source) : source
            return try ReplayEngine(
                scenarios: subset.map { scenarios[$0] }, recorded: try? inferred.get(), options: options,
                evidence: evidence
            ).run(counted, tracePath: t)
        }
    }
}
