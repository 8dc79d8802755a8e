import Models
import TraceFormat

extension ReplayEngine {
    /// The engine for `source` under `scenarios`, its recorded scenario inferred (from the metadata completed by
    /// the evidence of a first pass when the metadata is silent); with `addingRecorded`, the recorded scenario
    /// is replayed too, first, unless it is among `scenarios` (then it cannot be unknown:
    /// ``UnknownRecordedScenario``).
    public static func recorded(
        _ source: any EventSource, scenarios: [Scenario], addingRecorded: Bool, catalog: ModelCatalog,
        options: ReplayOptions
    ) throws -> ReplayEngine {
        var list = scenarios
        let (evidence, inferred) = try RecordedScenario.inferWithEvidence(source, catalog: catalog)
        let recorded = try? inferred.get()
        if addingRecorded {
            if case let .failure(e) = inferred { throw UnknownRecordedScenario(reason: "\(e)") }
            if let recorded, !list.contains(where: { $0.id == recorded.id }) { list.insert(recorded, at: 0) }
        }
        return ReplayEngine(scenarios: list, recorded: recorded, options: options, evidence: evidence)
    }
}

/// The recorded scenario was asked for but the trace does not tell it.
public struct UnknownRecordedScenario: Error, CustomStringConvertible {
    /// Why not, in words.
    public var reason: String
    public var description: String { "cannot tell the recorded scenario: \(reason)" }
}
