import Replay

/// The compatibility matrix: for a set of traces, kernels and QEMU modes, the verdict of every device in every
/// cell, and the answer to the origin thread's question (``MatrixAnswer``): the modes in which every selected
/// kernel works.
/// The compatibility matrix, the one model of a matrix run: for a set of traces, kernels and QEMU modes, every
/// scenario that ran (``Run``) and the verdict and addressing of every device in every cell (``Cell``, typed:
/// ``OutcomeClass`` and ``DeviceAddressing``), and the answer to the origin thread's question (``MatrixAnswer``):
/// the modes in which every selected kernel works. Its Codable form is the report's `matrix`; ``ReplayMatrix``
/// is a projection of it (`replay-json`, `--details`).
public struct CompatibilityMatrix: Sendable, Codable, Equatable {
    /// A device-level verdict as a report holds it: an ``OutcomeClass``, or the text of one this version does not
    /// write (a report of another version), kept as read. Its Codable form is the text.
    public enum Verdict: Sendable, Codable, Equatable, CustomStringConvertible {
        case outcome(OutcomeClass)
        case unrecognised(String)

        public init(_ text: String) {
            self = OutcomeClass(rawValue: text).map(Verdict.outcome) ?? .unrecognised(text)
        }

        /// The outcome, nil for a verdict of another version.
        public var outcome: OutcomeClass? {
            if case let .outcome(o) = self { return o }
            return nil
        }

        /// True for a verdict that is not a failure (`ok` or `untranslated-while-claimed`); false for one of
        /// another version.
        public var works: Bool { outcome.map { !$0.isFailure } ?? false }

        /// The report spelling (``OutcomeClass`` raw value).
        public var description: String {
            switch self {
            case let .outcome(o): o.rawValue
            case let .unrecognised(text): text
            }
        }

        public init(from decoder: any Decoder) throws {
            self.init(try decoder.singleValueContainer().decode(String.self))
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            try c.encode(description)
        }
    }

    /// One verdict: one device of one trace under one kernel × mode.
    public struct Cell: Sendable, Codable, Equatable {
        public var trace: String
        public var kernel: String
        public var mode: String
        public var device: String
        /// The device-level verdict.
        public var verdict: Verdict
        /// True when the verdict is not a failure (`ok` or `untranslated-while-claimed`).
        public var works: Bool
        /// Fingerprints of the findings behind this cell (drill-down), sorted.
        public var findings: [String]
        /// How the driver addressed the device and whether its DMA was translated (`iova-translated`,
        /// `gpa-untranslated`, ...), as the replay decided it; ``DeviceAddressing/Base/unknown`` when not recorded.
        public var addressing: DeviceAddressing

        public init(
            trace: String, kernel: String, mode: String, device: String, verdict: Verdict, works: Bool,
            findings: [String], addressing: DeviceAddressing = DeviceAddressing(base: .unknown)
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

        /// The cell's symbol in the answer's grid.
        public var symbol: MatrixAnswer.Symbol { MatrixAnswer.Symbol(verdict: verdict, addressing: addressing) }
    }

    /// One scenario that ran on one trace: the per-scenario outcome, its devices' verdicts in ``cells``. Built
    /// from replay results only: a report's `matrix` does not hold it (a decoded matrix has none).
    public struct Run: Sendable, Equatable {
        /// The trace's path, as given.
        public var trace: String
        public var kernel: String
        public var mode: String
        /// The recorded scenario did not reproduce the trace (its fidelity check found divergences).
        public var diverged: Bool
        /// Indices into ``cells`` of the scenario's devices, in the replay's device order.
        public var devices: [Int]

        public init(trace: String, kernel: String, mode: String, diverged: Bool, devices: [Int]) {
            self.trace = trace
            self.kernel = kernel
            self.mode = mode
            self.diverged = diverged
            self.devices = devices
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
    /// The scenarios that ran, in the order of the results (empty for a matrix decoded from a report).
    public var runs: [Run] = []

    enum CodingKeys: String, CodingKey {
        case traces, kernels, modes, cells, modesWorkingForAllKernels, answer
    }

    /// Equal as reports: ``runs`` are not part of the report, so a matrix equals its decoded JSON form.
    public static func == (a: CompatibilityMatrix, b: CompatibilityMatrix) -> Bool {
        a.traces == b.traces && a.kernels == b.kernels && a.modes == b.modes && a.cells == b.cells
            && a.modesWorkingForAllKernels == b.modesWorkingForAllKernels && a.answer == b.answer
    }

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
        var runs: [Run] = []
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
                runs.append(
                    Run(
                        trace: r.trace, kernel: s.kernel, mode: s.mode, diverged: s.diverged,
                        devices: Array(cells.count..<cells.count + s.devices.count)))
                for d in s.devices {
                    cells.append(
                        Cell(
                            trace: trace, kernel: s.kernel, mode: s.mode, device: d.device,
                            verdict: .outcome(d.verdict),
                            works: !d.verdict.isFailure,
                            findings: (findingsByCell["\(trace)\u{0}\(s.kernel)\u{0}\(s.mode)\u{0}\(d.device)"] ?? [])
                                .sorted(),
                            addressing: DeviceAddressing(d.addressing)))
                }
            }
        }
        // Sorted by (trace, kernel, mode, device); the runs follow their devices.
        let order = cells.indices.sorted {
            (cells[$0].trace, cells[$0].kernel, cells[$0].mode, cells[$0].device)
                < (cells[$1].trace, cells[$1].kernel, cells[$1].mode, cells[$1].device)
        }
        var position = [Int](repeating: 0, count: cells.count)
        for (new, old) in order.enumerated() { position[old] = new }
        for i in runs.indices { runs[i].devices = runs[i].devices.map { position[$0] } }
        cells = order.map { cells[$0] }
        let runAll = modes.filter { m in
            traces.allSatisfy { t in kernels.allSatisfy { k in works["\(t)\u{0}\(k)\u{0}\(m)"] == true } }
        }
        self.init(traces: traces.sorted(), kernels: kernels, modes: modes, cells: cells, modesWorkingForAllKernels: [])
        self.runs = runs
        let diverged = Set(
            runs.filter(\.diverged).map { "\(Fingerprint.traceName($0.trace))\u{0}\($0.kernel)\u{0}\($0.mode)" })
        let answer = MatrixAnswer(matrix: self, findings: findings, eras: eras, offAxis: offAxis, diverged: diverged)
        let working = Set(answer.workingForEveryKernel.map(\.mode))
        self.modesWorkingForAllKernels = runAll.filter(working.contains)
        self.answer = answer
    }

    /// The worst verdict of a (trace, kernel, mode) cell over its devices, or nil when the scenario was not run.
    public func verdict(trace: String, kernel: String, mode: String) -> String? {
        let mine = cells.filter { $0.trace == trace && $0.kernel == kernel && $0.mode == mode }
        guard !mine.isEmpty else { return nil }
        let classes = mine.compactMap(\.verdict.outcome)
        return classes.max { $0.severity < $1.severity }?.rawValue ?? mine[0].verdict.description
    }
}
