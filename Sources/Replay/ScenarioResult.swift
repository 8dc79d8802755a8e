/// The replay of one trace under one scenario (kernel model × QEMU mode).
public struct ScenarioResult: Sendable, Codable, Equatable {
    /// Kernel model id.
    public var kernel: String
    /// QEMU mode model id.
    public var mode: String
    /// True when this scenario is the one the trace was recorded under (fidelity applies).
    public var isRecorded: Bool
    /// Per-device results, sorted by device name.
    public var devices: [DeviceResult]
    /// Fidelity divergences (only for the recorded scenario; empty means the replay reproduced the trace).
    public var divergences: [Divergence]

    /// `kernel@mode`, the id used on the command line and in reports.
    public var id: String { "\(kernel)@\(mode)" }

    /// True when the recorded scenario's replay did not reproduce the trace: its predictions cannot be
    /// trusted, so the scenario never "works".
    public var diverged: Bool { isRecorded && !divergences.isEmpty }

    /// True when every device works (no failure verdict) and the replay did not diverge from the recording.
    public var works: Bool { !diverged && devices.allSatisfy { !$0.verdict.isFailure } }

    /// `works`, `fails`, or `diverged` (the recorded scenario did not reproduce the trace).
    public var verdict: String { diverged ? "diverged" : works ? "works" : "fails" }

    public init(kernel: String, mode: String, isRecorded: Bool, devices: [DeviceResult], divergences: [Divergence]) {
        self.kernel = kernel
        self.mode = mode
        self.isRecorded = isRecorded
        self.devices = devices
        self.divergences = divergences
    }
}
