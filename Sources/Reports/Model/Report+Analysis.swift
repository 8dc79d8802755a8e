import Analysis
import TraceFormat

extension Report {
    /// The `analyze` report of one trace (``OfflineAnalysis``).
    public init(analysis a: OfflineAnalysis, trace: String) {
        let name = Fingerprint.traceName(trace)
        let fidelity: FidelitySummary
        switch a.fidelity {
        case .skipped:
            fidelity = FidelitySummary(
                trace: name, scenario: nil, reproduced: nil, divergences: 0,
                unavailableBecause: "skipped (--no-fidelity)")
        case let .replayed(result, recorded):
            fidelity =
                FidelitySummary.from(result)
                ?? FidelitySummary(
                    trace: name, scenario: recorded, reproduced: nil, divergences: 0,
                    unavailableBecause: "the replay did not treat \(recorded) as the recorded scenario")
        case let .unavailable(why):
            fidelity = FidelitySummary(
                trace: name, scenario: nil, reproduced: nil, divergences: 0, unavailableBecause: why)
        }
        self.init(
            command: "analyze",
            traces: [
                TraceEntry(
                    name: name, path: trace, events: a.events, recordedScenario: fidelity.scenario,
                    inputs: InputRef.from(a.metadata), notes: a.notes)
            ],
            findings: a.findings, dmaDebug: [a.dmaDebug], fidelity: [fidelity])
    }
}
