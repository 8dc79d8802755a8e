import Replay

/// The replay's own view of a matrix run (`matrix --format replay-json` and `--details`): a projection of the
/// ``CompatibilityMatrix`` onto the selected kernels and modes, one cell per (trace, kernel, mode) with every
/// device's verdict, and the modes in which every selected kernel works on every trace (the origin thread's
/// question), with what each working mode costs. Its Codable form is the Replay contract tools read.
public struct ReplayMatrix: Sendable, Codable, Equatable {
    /// One device's verdict in one cell.
    public struct DeviceVerdict: Sendable, Codable, Equatable {
        public var device: String
        public var verdict: CompatibilityMatrix.Verdict
        public var addressing: DeviceAddressing
    }

    /// One (trace, kernel, mode) cell.
    public struct Cell: Sendable, Codable, Equatable {
        public var trace: String
        public var kernel: String
        public var mode: String
        /// Every device works (verdicts ok or untranslated-while-claimed) and the recorded replay did not diverge.
        public var works: Bool
        /// Devices sorted by name.
        public var devices: [DeviceVerdict]
    }

    /// A mode in which every selected kernel works, with its costs.
    public struct WorkingMode: Sendable, Codable, Equatable {
        public var mode: String
        /// What the mode costs, sorted: devices without DMA isolation, isolation claimed but absent, bounce copies.
        public var costs: [String]
    }

    /// Trace paths, as given.
    public var traces: [String]
    /// Kernel ids (with guest IOMMU suffix when given), as selected.
    public var kernels: [String]
    /// Mode ids, as selected.
    public var modes: [String]
    /// Cells, in (trace, kernel, mode) order.
    public var cells: [Cell]
    /// Modes in which every kernel works on every trace, in the order of ``modes``; DMA that bypasses an IOMMU the
    /// guest trusts (untranslated-while-claimed) is never counted as working.
    public var workingModes: [WorkingMode]
    /// Modes in which every kernel runs on every trace only because some DMA bypasses an IOMMU the guest trusts.
    public var unsafeModes: [WorkingMode]

    /// Builds the matrix from one replay per trace (each with every kernel × mode scenario).
    public init(results: [ReplayResult], kernels: [String], modes: [String]) {
        self.init(
            matrix: CompatibilityMatrix(results: results, findings: []), traces: results.map(\.trace),
            kernels: kernels, modes: modes)
    }

    /// Projects `matrix` (built from replay results: its ``CompatibilityMatrix/runs``) onto `traces` (paths, as
    /// given), `kernels` and `modes`. A mode works, or is unsafe, by the answer's rule: the worst
    /// ``MatrixAnswer/Symbol`` over its cells.
    public init(matrix: CompatibilityMatrix, traces: [String], kernels: [String], modes: [String]) {
        self.traces = traces
        self.kernels = kernels
        self.modes = modes
        var cells: [Cell] = []
        var symbols: [MatrixAnswer.Symbol] = []
        for t in traces {
            for k in kernels {
                for m in modes {
                    guard let run = matrix.runs.first(where: { $0.trace == t && $0.kernel == k && $0.mode == m })
                    else { continue }
                    let devices = run.devices.map { matrix.cells[$0] }
                    cells.append(
                        Cell(
                            trace: t, kernel: k, mode: m, works: !run.diverged && devices.allSatisfy(\.works),
                            devices: devices.map {
                                DeviceVerdict(device: $0.device, verdict: $0.verdict, addressing: $0.addressing)
                            }))
                    symbols.append(run.diverged ? .diverged : devices.map(\.symbol).max() ?? .isolated)
                }
            }
        }
        self.cells = cells
        var working: [WorkingMode] = [], unsafe: [WorkingMode] = []
        for m in modes {
            let inMode = cells.indices.filter { cells[$0].mode == m }
            guard !inMode.isEmpty, inMode.count == traces.count * kernels.count,
                let worst = inMode.map({ symbols[$0] }).max(), worst <= .bypassesClaimedIOMMU
            else { continue }
            let mode = WorkingMode(mode: m, costs: Self.costs(inMode.map { cells[$0] }))
            if worst == .bypassesClaimedIOMMU { unsafe.append(mode) } else { working.append(mode) }
        }
        self.workingModes = working
        self.unsafeModes = unsafe
    }

    /// What running the devices of `cells` costs, sorted: per kernel, devices untranslated while isolation is
    /// claimed, identity-mapped, bouncing through swiotlb, or untranslated without a vIOMMU.
    static func costs(_ cells: [Cell]) -> [String] {
        var costs = Set<String>()
        for c in cells {
            for d in c.devices {
                switch (d.verdict.outcome, d.addressing.base, d.addressing.claimed) {
                case (.untranslatedWhileClaimed?, _, _), (.ok?, .gpaUntranslated, true):
                    costs.insert("\(c.kernel): \(d.device) untranslated while the platform claims isolation")
                case (_, .gpaIdentity, false):
                    costs.insert("\(c.kernel): \(d.device) identity-mapped (no DMA isolation)")
                case (_, .bounceGPA, false), (_, .bounceTranslated, false):
                    costs.insert("\(c.kernel): \(d.device) bounces every DMA through swiotlb")
                case (.ok?, .gpaUntranslated, false):
                    costs.insert("\(c.kernel): \(d.device) untranslated (no vIOMMU isolation)")
                default:
                    break
                }
            }
        }
        return costs.sorted()
    }

    /// Plain-text rendering: one table per trace (kernels × modes, `ok` or the worst failing verdict), then
    /// the working modes and their costs.
    public func text() -> String {
        var out = ""
        for t in traces {
            out += "trace \(t)\n"
            for k in kernels {
                out += "  \(k)\n"
                for m in modes {
                    guard let c = cells.first(where: { $0.trace == t && $0.kernel == k && $0.mode == m }) else {
                        continue
                    }
                    let failing = c.devices.filter { !$0.verdict.works }
                    let what =
                        failing.isEmpty && !c.works
                        ? "diverged (the recorded replay does not reproduce this trace)"
                        : failing.isEmpty
                            ? (c.devices.contains { $0.verdict == .outcome(.untranslatedWhileClaimed) }
                                ? "works (untranslated-while-claimed)" : "works")
                            : failing.map { "\($0.device) \($0.verdict)" }.joined(separator: ", ")
                    out += "    \(m): \(what)\n"
                }
            }
        }
        let diverged = traces.filter { t in
            cells.contains { $0.trace == t && !$0.works && $0.devices.allSatisfy(\.verdict.works) }
        }
        for t in diverged {
            out +=
                "warning: the recorded scenario of \(t) diverged from the recording: its predictions are not trustworthy\n"
        }
        out += "modes in which every selected kernel works: "
        out += workingModes.isEmpty ? "none\n" : "\(workingModes.map(\.mode).joined(separator: ", "))\n"
        for w in workingModes {
            out += "  \(w.mode)\n"
            if w.costs.isEmpty { out += "    cost: none (every device translated and isolated)\n" }
            for c in w.costs { out += "    cost: \(c)\n" }
        }
        if !unsafeModes.isEmpty {
            out +=
                "unsafe: every selected kernel runs, but DMA bypasses an IOMMU the guest trusts, in: "
                + unsafeModes.map(\.mode).joined(separator: ", ") + "\n"
            for w in unsafeModes { for c in w.costs { out += "  \(w.mode): \(c)\n" } }
        }
        return out
    }
}
