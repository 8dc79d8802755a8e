import Models
import Replay
import TraceFormat

/// `dmatrace analyze`: the kernel's CONFIG_DMA_API_DEBUG checks (``DMADebugChecker``), the failures the guest
/// log states by itself (``RecordedLogFindings``) and the replay-fidelity check of the recorded scenario, in
/// one pass over a trace (standard input can be read only once). `Report(analysis:trace:)` (module Reports)
/// turns the result into the report.
public struct OfflineAnalysis {
    /// What became of the replay-fidelity check.
    public enum Fidelity {
        /// Not asked for (`--no-fidelity`).
        case skipped
        /// The recorded scenario (its id) was replayed.
        case replayed(ReplayResult, recorded: String)
        /// The recorded scenario could not be told: why.
        case unavailable(String)
    }

    /// Events seen.
    public var events: Int
    /// The trace's metadata after the pass (standard input applies metadata frames as it is read).
    public var metadata: TraceMetadata
    public var dmaDebug: DMADebugReport
    /// The DMA-API findings, the replay's fidelity findings and the guest log's, in that order.
    public var findings: [Finding]
    public var fidelity: Fidelity
    /// Notes of the fidelity replay.
    public var notes: [String]

    /// Runs every check over `source` (named `trace`) in one pass.
    public static func run(
        _ source: some EventSource, trace: String, options: DMADebugChecker.Options,
        fidelity check: Bool = true, catalog: ModelCatalog
    ) throws -> OfflineAnalysis {
        // The replay of the recorded scenario reads the trace, and the DMA-API checks see every event on the way.
        let box = CheckerBox(DMADebugChecker(metadata: source.metadata, options: options))
        let tee = TeeSource(base: source, box: box)
        var fidelity: Fidelity
        var replayFindings: [Finding] = []
        var notes: [String] = []
        switch RecordedScenario.infer(metadata: source.metadata, catalog: catalog) {
        case .success where !check:
            try tee.forEachEvent { _, _ in }
            fidelity = .skipped
        case .success(let recorded):
            let result = try ReplayEngine(scenarios: [recorded], recorded: recorded).run(tee, tracePath: trace)
            fidelity = .replayed(result, recorded: recorded.id)
            replayFindings = Findings.from(result).filter { $0.origin == .fidelity }
            notes = result.notes
        case .failure(let why):
            try tee.forEachEvent { _, _ in }
            fidelity = check ? .unavailable("\(why)") : .skipped
        }
        let dbg = box.checker.finish(trace: trace)
        let meta = source.metadata
        return OfflineAnalysis(
            events: box.events, metadata: meta, dmaDebug: dbg,
            findings: dbg.findings() + replayFindings + box.logFindings.findings(trace: trace, metadata: meta),
            fidelity: fidelity, notes: notes)
    }
}

/// The DMA-API checker shared between a ``TeeSource`` and the analysis (a class: it is owned mutable state
/// that an event callback updates).
final class CheckerBox {
    var checker: DMADebugChecker
    /// Failures the guest log states by itself (swiotlb exhaustion).
    var logFindings = RecordedLogFindings()
    var events = 0
    private var devices = -1
    init(_ checker: DMADebugChecker) { self.checker = checker }

    func see(_ index: Int, _ event: Event, metadata: @autoclosure () -> TraceMetadata) {
        let m = metadata()
        if m.devices.count != devices {
            devices = m.devices.count
            checker.refresh(metadata: m)
        }
        events += 1
        checker.consume(index: index, event)
        logFindings.consume(index: index, event)
    }
}

/// An event source that shows every event it plays to a ``CheckerBox`` first.
struct TeeSource<Base: EventSource>: EventSource {
    var base: Base
    var box: CheckerBox
    var metadata: TraceMetadata { base.metadata }
    func string(_ id: UInt32) -> String? { base.string(id) }
    func forEachEvent(_ body: (Int, Event) throws -> Void) throws {
        try base.forEachEvent { i, e in
            box.see(i, e, metadata: base.metadata)
            try body(i, e)
        }
    }
}
