/// A difference between what the recorded scenario's replay predicts and what the trace recorded
/// (docs/replay.md, "Fidelity"). Divergences are reported, never hidden: they are the tool's own correctness check.
public struct Divergence: Sendable, Codable, Equatable {
    /// What differs, in words (`recorded fault not predicted`, `predicted translation differs`, ...).
    public var what: String
    /// The device, if any.
    public var device: String?
    /// The event that shows it.
    public var at: Occurrence

    public init(what: String, device: String?, at: Occurrence) {
        self.what = what
        self.device = device
        self.at = at
    }
}
