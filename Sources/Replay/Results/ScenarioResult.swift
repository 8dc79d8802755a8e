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
    /// Fidelity divergences (only for the recorded scenario; empty with ``checked`` > 0 means the replay
    /// reproduced the trace). At most ``ReplayOptions/maxDivergences`` are listed.
    public var divergences: [Divergence]
    /// Recorded outcomes the fidelity check compared (recorded scenario only): translations, faults, guest fault
    /// lines, probe failures and IOVA allocations. 0 means there was nothing to check: not a pass.
    public var checked: Int?
    /// All divergences found, listed or not (recorded scenario only).
    public var divergenceCount: Int?
    /// The predicted DMA stream, when asked for (``ReplayOptions/collectStream``).
    public var stream: StreamMetrics?

    /// True when the recorded scenario checked something and found no divergence, false when it found one; nil
    /// for other scenarios and when there was nothing to check.
    public var reproduced: Bool? {
        guard isRecorded, let checked, checked > 0 else { return nil }
        return (divergenceCount ?? divergences.count) == 0
    }

    /// `kernel@mode`, the id used on the command line and in reports.
    public var id: String { "\(kernel)@\(mode)" }

    /// True when the recorded scenario's replay did not reproduce the trace: its predictions cannot be
    /// trusted, so the scenario never "works".
    public var diverged: Bool { isRecorded && !divergences.isEmpty }

    /// True when every device works (no failure verdict) and the replay did not diverge from the recording.
    public var works: Bool { !diverged && devices.allSatisfy { !$0.verdict.isFailure } }

    /// `works`, `fails`, or `diverged` (the recorded scenario did not reproduce the trace).
    public var verdict: String { diverged ? "diverged" : works ? "works" : "fails" }

    public init(
        kernel: String, mode: String, isRecorded: Bool, devices: [DeviceResult], divergences: [Divergence],
        checked: Int? = nil, divergenceCount: Int? = nil
    ) {
        self.checked = checked
        self.divergenceCount = divergenceCount
        self.kernel = kernel
        self.mode = mode
        self.isRecorded = isRecorded
        self.devices = devices
        self.divergences = divergences
    }
}
