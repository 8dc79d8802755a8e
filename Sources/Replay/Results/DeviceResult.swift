/// What one scenario predicts for one device.
public struct DeviceResult: Sendable, Codable, Equatable {
    /// The device's name (`0000:00:02.0`).
    public var device: String
    /// The device-level verdict: the worst class among its non-stray groups (`ok` when it works).
    public var verdict: OutcomeClass
    /// Outcome groups, sorted by (outcome, key).
    public var groups: [OutcomeGroup]
    /// Accesses replayed for this device.
    public var accesses: Int
    /// How the driver addressed the device and whether its DMA was translated (`iova-translated`,
    /// `gpa-untranslated`, `gpa-identity`, `iova-untranslated`, `bounce-gpa`, `mapping-error`, `none`; suffixed
    /// `-claimed` when the firmware table and the guest believe the device is translated but it is not).
    public var addressing: String

    public init(device: String, verdict: OutcomeClass, groups: [OutcomeGroup], accesses: Int, addressing: String = "") {
        self.device = device
        self.verdict = verdict
        self.groups = groups
        self.accesses = accesses
        self.addressing = addressing
    }
}
