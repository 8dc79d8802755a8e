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

    /// True when every device works (no failure verdict).
    public var works: Bool { devices.allSatisfy { !$0.verdict.isFailure } }

    public init(kernel: String, mode: String, isRecorded: Bool, devices: [DeviceResult], divergences: [Divergence]) {
        self.kernel = kernel
        self.mode = mode
        self.isRecorded = isRecorded
        self.devices = devices
        self.divergences = divergences
    }
}
