/// The replay of one trace under any number of scenarios, driven by one decode pass.
/// This is the contract between Replay and Analysis/Reports.
public struct ReplayResult: Sendable, Codable, Equatable {
    /// The trace's path as given.
    public var trace: String
    /// Number of events decoded.
    public var events: Int
    /// One result per scenario, in the order requested.
    public var scenarios: [ScenarioResult]
    /// What the replay could not use, in words (unattributed events, host accesses outside the guest trace).
    public var notes: [String]
    /// Scenario facts the trace's events contradict (``ScenarioEvidence``): the metadata says one thing, the
    /// recorded DMA another. nil when none.
    public var evidenceConflicts: [String]?

    public init(trace: String, events: Int, scenarios: [ScenarioResult], notes: [String] = []) {
        self.trace = trace
        self.events = events
        self.scenarios = scenarios
        self.notes = notes
    }

    /// What `replay --fail-on-findings` fails on: a scenario that fails or diverges from the recording, or
    /// evidence that contradicts the recorded facts.
    public var hasFindings: Bool {
        scenarios.contains { !$0.works || !$0.divergences.isEmpty } || evidenceConflicts != nil
    }
}
