/// What one scenario predicts for one device.
public struct DeviceResult: Sendable, Codable, Equatable {
    /// The device's name (`0000:00:02.0`).
    public var device: String
    /// The device-level verdict: the worst class among its groups (`ok` when it works).
    public var verdict: OutcomeClass
    /// Outcome groups, sorted by (outcome, key).
    public var groups: [OutcomeGroup]
    /// Accesses replayed for this device.
    public var accesses: Int

    public init(device: String, verdict: OutcomeClass, groups: [OutcomeGroup], accesses: Int) {
        self.device = device
        self.verdict = verdict
        self.groups = groups
        self.accesses = accesses
    }
}
