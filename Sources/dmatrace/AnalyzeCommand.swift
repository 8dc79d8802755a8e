import Analysis
import Models
import Replay
import ArgumentParser
import Reports
import TraceFormat

/// `dmatrace analyze TRACE`: the kernel's CONFIG_DMA_API_DEBUG checks run offline over the recorded stream.
struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Run the kernel's DMA-API debug checks offline over a trace: every violation, skipped checks with why.",
        discussion: """
            Re-implements kernel/dma/debug.c (CONFIG_DMA_API_DEBUG) over the recorded dma_map/unmap/alloc/free/sync \
            and dma_mapping_error events, with its exact/containing match and best-fit lookup, and reports every \
            violation in the kernel's own message format, plus the mappings still live when the capture ended. \
            Checks the trace has no data for are listed as skipped with the reason. By default a release or sync of \
            an address never seen mapped is assumed to belong to a mapping made before the capture started (counted, \
            not reported) unless the address was already released inside the capture; --capture-from-start reports it.
            """)

    @Argument(help: "Trace (.dmat or dmatrace JSONL).")
    var trace: String

    @Flag(name: .long, help: "The capture covers the driver's whole life: report releases and syncs of never-mapped addresses.")
    var captureFromStart = false

    @Option(name: .long, help: "Kernel message era: 4.x, 5.x-6.18 or 6.19 (default: from the trace's kernel release).")
    var era: String?

    @Flag(name: .long, help: "Skip the replay-fidelity check of the recorded scenario (DMA-API checks only).")
    var noFidelity = false

    @Option(name: .long, help: "Exit 1 when a finding of this severity or worse exists: error, warning or note.")
    var failOn: String?

    @OptionGroup var output: ReportOutputOptions

    func validate() throws {
        if let era, DMADebugChecker.Era(rawValue: era) == nil {
            throw ValidationError("--era must be one of \(DMADebugChecker.Era.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let failOn, FindingSeverity(rawValue: failOn) == nil {
            throw ValidationError("--fail-on must be error, warning or note")
        }
    }

    func run() throws {
        var status: ExitCode?
        try runReportingErrors {
            let opened = try OpenedTrace.open(trace)
            let options = DMADebugChecker.Options(captureFromStart: captureFromStart, era: era.flatMap(DMADebugChecker.Era.init(rawValue:)))
            let report = try Self.analyze(opened.source, trace: trace, options: options, fidelity: !noFidelity)
            try output.emit(report, inputs: [trace])
            let damage = opened.damage()
            if !damage.isEmpty {
                for d in damage { warn("\(trace): \(d)") }
                status = ExitStatus.damaged
            } else if let failOn, let level = FindingSeverity(rawValue: failOn), report.findings.contains(where: { $0.severity >= level }) {
                status = ExitStatus.findings
            }
        }
        if let status { throw status }
    }

    /// The analyze report of one trace, in one pass over it.
    static func analyze(_ source: some EventSource, trace: String, options: DMADebugChecker.Options, fidelity check: Bool = true) throws -> Report {
        // One pass (standard input can be read only once): the replay of the recorded scenario reads the
        // trace, and the DMA-API checks see every event on the way.
        let box = CheckerBox(DMADebugChecker(metadata: source.metadata, options: options))
        let tee = TeeSource(base: source, box: box)
        var fidelity: FidelitySummary
        var replayFindings: [Finding] = []
        var notes: [String] = []
        let catalog = try ModelCatalog.builtin()
        switch RecordedScenario.infer(metadata: source.metadata, catalog: catalog) {
        case .success where !check:
            try tee.forEachEvent { _, _ in }
            fidelity = FidelitySummary(trace: Fingerprint.traceName(trace), scenario: nil, reproduced: nil, divergences: 0,
                                       unavailableBecause: "skipped (--no-fidelity)")
        case .success(let recorded):
            let result = try ReplayEngine(scenarios: [recorded], recorded: recorded).run(tee, tracePath: trace)
            fidelity = FidelitySummary.from(result)
                ?? FidelitySummary(trace: Fingerprint.traceName(trace), scenario: recorded.id, reproduced: nil, divergences: 0,
                                   unavailableBecause: "the replay did not treat \(recorded.id) as the recorded scenario")
            replayFindings = Findings.from(result).filter { $0.origin == .fidelity }
            notes = result.notes
        case .failure(let why):
            try tee.forEachEvent { _, _ in }
            fidelity = FidelitySummary(trace: Fingerprint.traceName(trace), scenario: nil, reproduced: nil, divergences: 0,
                                       unavailableBecause: check ? "\(why)" : "skipped (--no-fidelity)")
        }
        let dbg = box.checker.finish(trace: trace)
        let meta = source.metadata
        let report = Report(
            command: "analyze",
            traces: [TraceEntry(name: Fingerprint.traceName(trace), path: trace, events: box.events, recordedScenario: fidelity.scenario,
                                inputs: InputRef.from(meta), notes: notes)],
            findings: dbg.findings() + replayFindings + box.logFindings.findings(trace: trace, metadata: meta),
            dmaDebug: [dbg], fidelity: [fidelity])
        return report
    }
}

/// The DMA-API checker shared between a ``TeeSource`` and the command (a class: it is owned mutable state
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
