/// All outcomes of one class for one device in one scenario, with counts, the first and the worst occurrence,
/// the rule that decided them and the log lines the guest kernel and QEMU would print.
public struct OutcomeGroup: Sendable, Codable, Equatable {
    /// The outcome class.
    public var outcome: OutcomeClass
    /// A sub-key that splits a class into distinct findings (e.g. `reason=0x06,read`), stable across runs.
    public var key: String
    /// How many accesses (or 1 for device-level outcomes).
    public var count: Int
    /// The first occurrence in trace order.
    public var first: Occurrence?
    /// The worst occurrence (largest size, then earliest), if different from the first.
    public var worst: Occurrence?
    /// The rule and its source, in words (kernel or QEMU version, file, function).
    public var explanation: String
    /// Model ids and source citations behind the decision.
    public var rule: String
    /// The lines the guest kernel would print (dmesg), in that kernel's era format.
    public var guestLog: [String]
    /// The lines QEMU would print or trace.
    public var hostLog: [String]
    /// True when the accesses resolve to no buffer the driver mapped (stray DMA, a device bug present in the
    /// recording under every scenario): reported, but not counted in the device's verdict.
    public var stray: Bool

    public init(
        outcome: OutcomeClass, key: String, count: Int, first: Occurrence?, worst: Occurrence?,
        explanation: String, rule: String, guestLog: [String], hostLog: [String], stray: Bool = false
    ) {
        self.outcome = outcome
        self.key = key
        self.count = count
        self.first = first
        self.worst = worst
        self.explanation = explanation
        self.rule = rule
        self.guestLog = guestLog
        self.hostLog = hostLog
        self.stray = stray
    }
}
