import Models
import TraceFormat

extension RecordedScenario {
    /// The evidence pass over `source` when its metadata leaves scenario facts open (``ScenarioEvidence/needed(_:)``),
    /// and the recorded scenario inferred from the metadata completed by it.
    public static func inferWithEvidence(_ source: any EventSource, catalog: ModelCatalog) throws
        -> (evidence: ScenarioEvidence?, recorded: Result<Scenario, ModelError>)
    {
        let evidence = ScenarioEvidence.needed(source.metadata) ? try ScenarioEvidence.scan(source) : nil
        let metadata = evidence.map { $0.apply(to: source.metadata) } ?? source.metadata
        return (evidence, infer(metadata: metadata, catalog: catalog))
    }
}

extension TraceSummary {
    /// Adds ``recordedScenario`` and ``scenarioEvidence`` from a second pass over an undamaged `reader`: what
    /// the events show, and the recorded scenario (`KERNEL+SETTING@MODE`) from the metadata completed by it.
    public mutating func addRecordedScenario(_ reader: TraceReader, catalog: ModelCatalog) throws {
        addRecordedScenario(try ScenarioEvidence.scan(reader), metadata: reader.metadata, catalog: catalog)
    }

    /// As ``addRecordedScenario(_:catalog:)``, from `evidence` already scanned (standard input is read once).
    public mutating func addRecordedScenario(
        _ evidence: ScenarioEvidence, metadata: TraceMetadata, catalog: ModelCatalog
    ) {
        let inferences = evidence.infer(metadata: metadata)
        scenarioEvidence =
            ScenarioEvidence.describe(inferences, metadata: metadata) + IOMMUAttachment.describe(metadata)
        let completed = evidence.apply(to: metadata)
        switch RecordedScenario.infer(metadata: completed, catalog: catalog) {
        case let .success(s):
            let setting = s.guestIOMMU ?? GuestIOMMUSetting(capture: completed.capture)
            recordedScenario = "\(s.kernel.id)\(setting.map { "+\($0.rawValue)" } ?? "")@\(s.mode.id)"
        case let .failure(e):
            recordedScenario = "cannot tell: \(e)"
        }
    }
}
