/// The replay of one trace under any number of scenarios, driven by one decode pass.
/// This is the contract between Replay and Analysis/Reports.
public struct ReplayResult: Sendable, Codable, Equatable {
    /// The trace's path as given.
    public var trace: String
    /// Number of events decoded.
    public var events: Int
    /// One result per scenario, in the order requested.
    public var scenarios: [ScenarioResult]

    public init(trace: String, events: Int, scenarios: [ScenarioResult]) {
        self.trace = trace
        self.events = events
        self.scenarios = scenarios
    }
}
