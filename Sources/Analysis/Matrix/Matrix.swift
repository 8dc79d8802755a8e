import Replay

/// The compatibility matrix: for a set of traces, kernels and QEMU modes, the verdict of every device in every
/// cell, and the answer to the origin thread's question (``MatrixAnswer``): the modes in which every selected
/// kernel works.
public struct CompatibilityMatrix: Sendable, Codable, Equatable {
    /// One verdict: one device of one trace under one kernel × mode.
    public struct Cell: Sendable, Codable, Equatable {
        public var trace: String
        public var kernel: String
        public var mode: String
        public var device: String
        /// The device-level verdict (``OutcomeClass`` raw value).
        public var verdict: String
        /// True when the verdict is not a failure (`ok` or `untranslated-while-claimed`).
        public var works: Bool
        /// Fingerprints of the findings behind this cell (drill-down), sorted.
        public var findings: [String]
        /// How the driver addressed the device and whether its DMA was translated (`iova-translated`,
        /// `gpa-untranslated`, ...), as the replay decided it; empty when unknown.
        public var addressing: String

        public init(
            trace: String, kernel: String, mode: String, device: String, verdict: String, works: Bool,
            findings: [String], addressing: String = ""
        ) {
            self.trace = trace
            self.kernel = kernel
            self.mode = mode
            self.device = device
            self.verdict = verdict
            self.works = works
            self.findings = findings
            self.addressing = addressing
        }
    }

    /// Trace names, sorted.
    public var traces: [String]
    /// Kernel model ids, in first-seen order.
    public var kernels: [String]
    /// Mode model ids, in first-seen order.
    public var modes: [String]
    /// Cells sorted by (trace, kernel, mode, device).
    public var cells: [Cell]
    /// Modes in which every device of every trace works for every kernel, never counting DMA that bypasses an
    /// IOMMU the guest trusts as working (the modes of ``MatrixAnswer/workingForEveryKernel``; report schema 1
    /// counted untranslated-while-claimed as working).
    public var modesWorkingForAllKernels: [String]
    /// The answer read off the cells (absent in reports of schema 1).
    public var answer: MatrixAnswer?

    public init(
        traces: [String], kernels: [String], modes: [String], cells: [Cell], modesWorkingForAllKernels: [String],
        answer: MatrixAnswer? = nil
    ) {
        self.traces = traces
        self.kernels = kernels
        self.modes = modes
        self.cells = cells
        self.modesWorkingForAllKernels = modesWorkingForAllKernels
        self.answer = answer
    }

    /// Builds the matrix from replay results and the findings made from them (for drill-down links and the
    /// answer's example lines). A mode counts as working for all kernels only when every (trace, kernel) pair has
    /// a scenario in that mode and every device works there, isolated or honestly not; a missing scenario is not
    /// a pass. `eras` and `offAxis` describe the kernel axis for the answer.
    public init(
        results: [ReplayResult], findings: [Finding], eras: [MatrixAnswer.Era]? = nil,
        offAxis: [MatrixAnswer.OffAxis] = []
    ) {
        var kernels: [String] = []
        var modes: [String] = []
        var cells: [Cell] = []
        var findingsByCell: [String: [String]] = [:]
        for f in findings where f.origin == .replay {
            guard let k = f.kernel, let m = f.mode else { continue }
            findingsByCell["\(f.trace)\u{0}\(k)\u{0}\(m)\u{0}\(f.device)", default: []].append(f.fingerprint)
        }
        var works: [String: Bool] = [:]  // trace\0kernel\0mode
        var traces: [String] = []
        for r in results {
            let trace = Fingerprint.traceName(r.trace)
            if !traces.contains(trace) { traces.append(trace) }
            for s in r.scenarios {
                if !kernels.contains(s.kernel) { kernels.append(s.kernel) }
                if !modes.contains(s.mode) { modes.append(s.mode) }
                works["\(trace)\u{0}\(s.kernel)\u{0}\(s.mode)"] =
                    s.works && (works["\(trace)\u{0}\(s.kernel)\u{0}\(s.mode)"] ?? true)
                for d in s.devices {
                    cells.append(
                        Cell(
                            trace: trace, kernel: s.kernel, mode: s.mode, device: d.device, verdict: d.verdict.rawValue,
                            works: !d.verdict.isFailure,
                            findings: (findingsByCell["\(trace)\u{0}\(s.kernel)\u{0}\(s.mode)\u{0}\(d.device)"] ?? [])
                                .sorted(),
                            addressing: d.addressing))
                }
            }
        }
        cells.sort { ($0.trace, $0.kernel, $0.mode, $0.device) < ($1.trace, $1.kernel, $1.mode, $1.device) }
        let runAll = modes.filter { m in
            traces.allSatisfy { t in kernels.allSatisfy { k in works["\(t)\u{0}\(k)\u{0}\(m)"] == true } }
        }
        self.init(traces: traces.sorted(), kernels: kernels, modes: modes, cells: cells, modesWorkingForAllKernels: [])
        var diverged = Set<String>()
        for r in results {
            for s in r.scenarios where s.diverged {
                diverged.insert("\(Fingerprint.traceName(r.trace))\u{0}\(s.kernel)\u{0}\(s.mode)")
            }
        }
        let answer = MatrixAnswer(matrix: self, findings: findings, eras: eras, offAxis: offAxis, diverged: diverged)
        let working = Set(answer.workingForEveryKernel.map(\.mode))
        self.modesWorkingForAllKernels = runAll.filter(working.contains)
        self.answer = answer
    }

    /// The worst verdict of a (trace, kernel, mode) cell over its devices, or nil when the scenario was not run.
    public func verdict(trace: String, kernel: String, mode: String) -> String? {
        let mine = cells.filter { $0.trace == trace && $0.kernel == kernel && $0.mode == mode }
        guard !mine.isEmpty else { return nil }
        let classes = mine.compactMap { OutcomeClass(rawValue: $0.verdict) }
        return classes.max { $0.severity < $1.severity }?.rawValue ?? mine[0].verdict
    }
}
