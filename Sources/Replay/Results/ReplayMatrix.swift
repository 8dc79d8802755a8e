/// Replay's own view of the matrix (Analysis has the report's ``CompatibilityMatrix`` with finding drill-down):
/// outcomes per trace × kernel × mode × device, and the modes in which every selected kernel works on every
/// trace (the origin thread's question), with what each working mode costs.
public struct ReplayMatrix: Sendable, Codable, Equatable {
    /// One device's verdict in one cell.
    public struct DeviceVerdict: Sendable, Codable, Equatable {
        public var device: String
        public var verdict: OutcomeClass
        public var addressing: String
    }

    /// One (trace, kernel, mode) cell.
    public struct Cell: Sendable, Codable, Equatable {
        public var trace: String
        public var kernel: String
        public var mode: String
        /// Every device works (verdicts ok or untranslated-while-claimed).
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
        self.traces = results.map(\.trace)
        self.kernels = kernels
        self.modes = modes
        var cells: [Cell] = []
        for r in results {
            for k in kernels {
                for m in modes {
                    guard let s = r.scenarios.first(where: { $0.kernel == k && $0.mode == m }) else { continue }
                    cells.append(
                        Cell(
                            trace: r.trace, kernel: k, mode: m, works: s.works,
                            devices: s.devices.map {
                                DeviceVerdict(device: $0.device, verdict: $0.verdict, addressing: $0.addressing)
                            }))
                }
            }
        }
        self.cells = cells
        var working: [WorkingMode] = [], unsafe: [WorkingMode] = []
        for m in modes {
            let inMode = cells.filter { $0.mode == m }
            guard !inMode.isEmpty, inMode.count == results.count * kernels.count, inMode.allSatisfy(\.works) else {
                continue
            }
            var costs = Set<String>()
            for c in inMode {
                for d in c.devices {
                    let a = DeviceAddressing(d.addressing)
                    switch (d.verdict, a.base, a.claimed) {
                    case (.untranslatedWhileClaimed, _, _), (.ok, .gpaUntranslated, true):
                        costs.insert("\(c.kernel): \(d.device) untranslated while the platform claims isolation")
                    case (_, .gpaIdentity, false):
                        costs.insert("\(c.kernel): \(d.device) identity-mapped (no DMA isolation)")
                    case (_, .bounceGPA, false), (_, .bounceTranslated, false):
                        costs.insert("\(c.kernel): \(d.device) bounces every DMA through swiotlb")
                    case (.ok, .gpaUntranslated, false):
                        costs.insert("\(c.kernel): \(d.device) untranslated (no vIOMMU isolation)")
                    default:
                        break
                    }
                }
            }
            let claimed = inMode.contains { c in
                c.devices.contains {
                    $0.verdict == .untranslatedWhileClaimed || DeviceAddressing($0.addressing).claimed
                }
            }
            if claimed {
                unsafe.append(WorkingMode(mode: m, costs: costs.sorted()))
            } else {
                working.append(WorkingMode(mode: m, costs: costs.sorted()))
            }
        }
        self.workingModes = working
        self.unsafeModes = unsafe
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
                    let failing = c.devices.filter { $0.verdict.isFailure }
                    let what =
                        failing.isEmpty && !c.works
                        ? "diverged (the recorded replay does not reproduce this trace)"
                        : failing.isEmpty
                            ? (c.devices.contains { $0.verdict == .untranslatedWhileClaimed }
                                ? "works (untranslated-while-claimed)" : "works")
                            : failing.map { "\($0.device) \($0.verdict.rawValue)" }.joined(separator: ", ")
                    out += "    \(m): \(what)\n"
                }
            }
        }
        let diverged = traces.filter { t in
            cells.contains { $0.trace == t && !$0.works && !$0.devices.contains { $0.verdict.isFailure } }
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
