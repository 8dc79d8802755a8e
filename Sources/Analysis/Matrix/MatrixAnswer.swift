import Models
import Replay

/// The answer to the origin thread's question, read off a ``CompatibilityMatrix``: in which QEMU modes (and with
/// which virtio device transport) does every selected kernel work, which of those keep DMA isolated, and what
/// blocks the others. "Works, but DMA bypasses an IOMMU the guest trusts" (untranslated-while-claimed) is never
/// counted as working: it is listed as the unsafe alternative, with its cost.
public struct MatrixAnswer: Sendable, Codable, Equatable {
    /// One cell of the grid: a (trace, kernel, mode) verdict over every device of the trace.
    public enum Symbol: String, Sendable, Codable, CaseIterable, Comparable {
        /// Every device works and every DMA-capable device is translated by an IOMMU.
        case isolated = "works-isolated"
        /// Every device works; some DMA is not isolated, and nothing claims it is (no vIOMMU, identity domain,
        /// device outside the IOMMU's declared scope, swiotlb without an IOMMU).
        case unisolated = "works-no-isolation"
        /// Every device runs, but some DMA bypasses an IOMMU the firmware table and the guest believe translates
        /// it: a guest-side vfio, DPDK or nested VM on that device corrupts memory silently.
        case bypassesClaimedIOMMU = "works-bypassing-claimed-iommu"
        /// A device faults in the IOMMU.
        case fault
        /// A device's DMA is served by a lazily-unmapped IOTLB entry.
        case stale
        /// The DMA API returns mapping errors.
        case mappingFailed = "mapping-failed"
        /// The kernel never sees a device.
        case invisible
        /// A driver fails to probe a device.
        case probeFailed = "probe-failed"
        /// A device writes to the wrong guest memory.
        case misdirected
        /// The kernel oopses.
        case oops
        /// The trace's own recorded scenario did not reproduce it: no prediction from it is trustworthy.
        case diverged
        /// No scenario ran for this cell.
        case notRun = "not-run"

        var rank: Int { Symbol.allCases.firstIndex(of: self)! }
        public static func < (a: Symbol, b: Symbol) -> Bool { a.rank < b.rank }

        /// True for the symbols that count as working in the answer.
        public var works: Bool { self == .isolated || self == .unisolated }
        /// True for every symbol that means a device does not work (not-run excluded).
        public var fails: Bool { self > .bypassesClaimedIOMMU && self != .notRun }

        /// One character for the text grid.
        public var glyph: String {
            switch self {
            case .isolated: "✓"
            case .unisolated: "○"
            case .bypassesClaimedIOMMU: "⚠"
            case .fault: "F"
            case .stale: "S"
            case .mappingFailed: "M"
            case .invisible: "I"
            case .probeFailed: "P"
            case .misdirected: "C"
            case .oops: "X"
            case .diverged: "D"
            case .notRun: "·"
            }
        }

        /// What the glyph means, for the legend.
        public var meaning: String {
            switch self {
            case .isolated: "works, DMA isolated"
            case .unisolated: "works, no DMA isolation (none claimed)"
            case .bypassesClaimedIOMMU: "runs, but DMA bypasses an IOMMU the guest trusts (unsafe)"
            case .fault: "IOMMU faults"
            case .stale: "stale IOTLB use"
            case .mappingFailed: "mapping fails"
            case .invisible: "device invisible"
            case .probeFailed: "probe fails"
            case .misdirected: "DMA misdirected (corruption)"
            case .oops: "kernel oops"
            case .diverged: "recorded replay diverged from the trace (untrustworthy)"
            case .notRun: "not run"
            }
        }

        /// The symbol of one device's verdict and addressing as a report spells them (``DeviceResult``).
        public init(verdict: String, addressing: String) {
            self.init(verdict: CompatibilityMatrix.Verdict(verdict), addressing: DeviceAddressing(addressing))
        }

        /// The symbol of one device's verdict and addressing (a ``CompatibilityMatrix/Cell``).
        public init(verdict: CompatibilityMatrix.Verdict, addressing: DeviceAddressing) {
            guard let outcome = verdict.outcome else {
                // A verdict this version does not write (a report of another version).
                self = verdict.description.hasPrefix("oops") ? .oops : .probeFailed
                return
            }
            switch addressing.isolation(verdict: outcome) {
            case .isolated?: self = .isolated
            case .unisolated?: self = .unisolated
            case .bypassesClaimedIOMMU?: self = .bypassesClaimedIOMMU
            case nil:
                switch outcome {
                case .fault: self = .fault
                case .stale: self = .stale
                case .mappingFailed: self = .mappingFailed
                case .invisible: self = .invisible
                case .probeFailed: self = .probeFailed
                case .misdirected: self = .misdirected
                case .oops, .oopsHypothesis: self = .oops
                case .ok, .untranslatedWhileClaimed: self = .isolated  // isolation(verdict:) decided these
                }
            }
        }
    }

    /// Kernels of one era, in axis order.
    public struct Era: Sendable, Codable, Equatable {
        public var name: String
        public var kernels: [String]
        public init(name: String, kernels: [String]) {
            self.name = name
            self.kernels = kernels
        }
    }

    /// A kernel left off the default axis, and why.
    public struct OffAxis: Sendable, Codable, Equatable {
        public var kernel: String
        public var why: String
        public init(kernel: String, why: String) {
            self.kernel = kernel
            self.why = why
        }
    }

    /// One row of a trace's grid: a mode (with its device variant), one symbol per kernel of ``kernels``.
    public struct Row: Sendable, Codable, Equatable {
        /// The mode as run (`qemu-noiommu+transitional`).
        public var mode: String
        /// The mode model id.
        public var base: String
        /// `transitional` or `modern` when the virtio devices were created another way than recorded.
        public var variant: String?
        public var cells: [Symbol]
        public init(mode: String, base: String, variant: String?, cells: [Symbol]) {
            self.mode = mode
            self.base = base
            self.variant = variant
            self.cells = cells
        }
    }

    /// One trace's grid.
    public struct Grid: Sendable, Codable, Equatable {
        public var trace: String
        public var rows: [Row]
        public init(trace: String, rows: [Row]) {
            self.trace = trace
            self.rows = rows
        }
    }

    /// A mode in the answer, with what it costs.
    public struct ModeCost: Sendable, Codable, Equatable {
        public var mode: String
        /// Devices without isolation or bypassing a claimed IOMMU, per kernel, sorted.
        public var costs: [String]
        public init(mode: String, costs: [String]) {
            self.mode = mode
            self.costs = costs
        }
    }

    /// Kernels that fail in some modes: one entry per (kernel, failure, devices).
    public struct Blocker: Sendable, Codable, Equatable {
        public var kernel: String
        public var failure: Symbol
        public var devices: [String]
        /// Modes (as run) where this happens, in row order.
        public var modes: [String]
        /// The first line that kernel would print, when a finding says.
        public var example: String?
        public init(kernel: String, failure: Symbol, devices: [String], modes: [String], example: String?) {
            self.kernel = kernel
            self.failure = failure
            self.devices = devices
            self.modes = modes
            self.example = example
        }
    }

    /// The kernel axis, in era order.
    public var kernels: [String]
    public var eras: [Era]
    /// Kernels not on the axis, with why (empty when the axis was given explicitly).
    public var offAxis: [OffAxis]
    /// One grid per trace.
    public var grids: [Grid]
    /// Modes in which every kernel works with every device's DMA isolated, on every trace.
    public var isolatedForEveryKernel: [String]
    /// Modes in which every kernel works (isolated or honestly unisolated) on every trace, with the costs.
    public var workingForEveryKernel: [ModeCost]
    /// Modes in which every kernel runs but some DMA bypasses an IOMMU the guest trusts: the unsafe alternative.
    public var unsafeForEveryKernel: [ModeCost]
    /// What blocks the other modes.
    public var blockers: [Blocker]
    /// What a device property (transport, iommu_platform) would change.
    public var hints: [String]
    /// The answer in one line.
    public var headline: String
    /// Traces whose recorded scenario did not reproduce them: their predictions are not trustworthy.
    public var divergedTraces: [String]

    /// `modes` without the device variants whose base mode is in the list too (the base then stands for "with
    /// any transport"): what a person needs to read.
    public static func collapse(_ modes: [String]) -> [String] {
        func base(_ mode: String) -> String? {
            guard let plus = mode.lastIndex(of: "+"),
                VirtioDeviceVariant(rawValue: String(mode[mode.index(after: plus)...])) != nil
            else { return nil }
            return String(mode[..<plus])
        }
        return modes.filter { mode in base(mode).map { !modes.contains($0) } ?? true }
    }

    /// Reads the answer off `matrix`. `kernelOrder` and `eras` give the axis (default: the matrix's kernels in
    /// one era); `findings` supply the example console lines of blockers.
    /// `diverged` holds the `trace\0kernel\0mode` keys of recorded scenarios that diverged from their trace.
    public init(
        matrix m: CompatibilityMatrix, findings: [Finding], eras givenEras: [Era]? = nil, offAxis: [OffAxis] = [],
        diverged: Set<String> = []
    ) {
        let eras = (givenEras ?? [Era(name: "kernels", kernels: m.kernels)])
            .map { Era(name: $0.name, kernels: $0.kernels.filter(m.kernels.contains)) }.filter { !$0.kernels.isEmpty }
        let axis = eras.flatMap(\.kernels) + m.kernels.filter { k in !eras.contains { $0.kernels.contains(k) } }
        self.kernels = axis
        self.eras = eras
        self.offAxis = offAxis
        // Rows: base modes in matrix order, each followed by its variants.
        func split(_ mode: String) -> (String, String?) {
            guard let plus = mode.lastIndex(of: "+") else { return (mode, nil) }
            let v = String(mode[mode.index(after: plus)...])
            return VirtioDeviceVariant(rawValue: v) == nil ? (mode, nil) : (String(mode[..<plus]), v)
        }
        var bases: [String] = []
        for mode in m.modes where !bases.contains(split(mode).0) { bases.append(split(mode).0) }
        let orderedModes = bases.flatMap { b in
            m.modes.filter { split($0).0 == b }.sorted { (split($0).1 ?? "") < (split($1).1 ?? "") }
        }

        var byCell: [String: [CompatibilityMatrix.Cell]] = [:]
        for c in m.cells { byCell["\(c.trace)\u{0}\(c.kernel)\u{0}\(c.mode)", default: []].append(c) }
        func symbol(_ t: String, _ k: String, _ mode: String) -> Symbol {
            if diverged.contains("\(t)\u{0}\(k)\u{0}\(mode)") { return .diverged }
            guard let cells = byCell["\(t)\u{0}\(k)\u{0}\(mode)"] else { return .notRun }
            return cells.map(\.symbol).max() ?? .isolated
        }
        self.grids = m.traces.map { t in
            Grid(
                trace: t,
                rows: orderedModes.map { mode in
                    let (b, v) = split(mode)
                    return Row(mode: mode, base: b, variant: v, cells: axis.map { symbol(t, $0, mode) })
                })
        }

        // The answer over every trace.
        func worst(_ mode: String, _ k: String) -> Symbol { m.traces.map { symbol($0, k, mode) }.max() ?? .notRun }
        // Costs of a mode: devices not isolated or bypassing a claimed IOMMU, grouped by the kernels they apply to.
        func costs(_ mode: String) -> [String] {
            var byKernel: [String: Set<String>] = [:]
            for c in m.cells where c.mode == mode {
                switch c.symbol {
                case .bypassesClaimedIOMMU:
                    byKernel[c.kernel, default: []].insert("\(c.device) bypasses the IOMMU the guest trusts")
                case .unisolated: byKernel[c.kernel, default: []].insert("\(c.device) not isolated (\(c.addressing))")
                default: break
                }
            }
            var kernelsBySignature: [[String]: [String]] = [:]
            for k in axis { if let d = byKernel[k] { kernelsBySignature[d.sorted(), default: []].append(k) } }
            return kernelsBySignature.map { devices, ks in
                (ks.count == axis.count ? "every kernel" : ks.joined(separator: ", ")) + ": "
                    + devices.joined(separator: ", ")
            }.sorted()
        }
        var isolated: [String] = [], working: [ModeCost] = [], unsafe: [ModeCost] = []
        for mode in orderedModes where !axis.isEmpty {
            let worstOver = axis.map { worst(mode, $0) }.max() ?? .notRun
            if worstOver == .isolated { isolated.append(mode) }
            if worstOver.works { working.append(ModeCost(mode: mode, costs: costs(mode))) }
            if worstOver == .bypassesClaimedIOMMU { unsafe.append(ModeCost(mode: mode, costs: costs(mode))) }
        }
        self.isolatedForEveryKernel = isolated
        self.workingForEveryKernel = working
        self.unsafeForEveryKernel = unsafe

        // Blockers: failing cells grouped by kernel, failure and devices.
        var exampleByCell: [String: String] = [:]
        for f in findings where f.origin == .replay {
            guard let k = f.kernel, let mode = f.mode, let line = f.guestLog.first else { continue }
            let key = "\(k)\u{0}\(mode)"
            if exampleByCell[key] == nil { exampleByCell[key] = line }
        }
        var blockers: [Blocker] = []
        for k in axis {
            for mode in orderedModes {
                var failing: [String: Set<String>] = [:]  // symbol -> devices
                for t in m.traces {
                    for c in byCell["\(t)\u{0}\(k)\u{0}\(mode)"] ?? [] {
                        let s = c.symbol
                        if s.fails { failing[s.rawValue, default: []].insert(c.device) }
                    }
                }
                for (raw, devs) in failing.sorted(by: { $0.key < $1.key }) {
                    let s = Symbol(rawValue: raw)!
                    if let i = blockers.firstIndex(where: { $0.kernel == k && $0.failure == s }) {
                        blockers[i].modes.append(mode)
                        blockers[i].devices = Array(Set(blockers[i].devices).union(devs)).sorted()
                    } else {
                        blockers.append(
                            Blocker(
                                kernel: k, failure: s, devices: devs.sorted(), modes: [mode],
                                example: exampleByCell["\(k)\u{0}\(mode)"]))
                    }
                }
            }
        }
        self.blockers = blockers

        // Hints: a device variant that makes a mode work (or isolate) for more kernels than as recorded.
        var hints: [String] = []
        for b in bases {
            guard orderedModes.contains(b) else { continue }
            let baseWorking = axis.filter { worst(b, $0).works }.count
            let baseIsolated = axis.filter { worst(b, $0) == .isolated }.count
            for v in VirtioDeviceVariant.allCases {
                let mode = "\(b)+\(v.rawValue)"
                guard orderedModes.contains(mode) else { continue }
                let w = axis.filter { worst(mode, $0).works }.count
                let i = axis.filter { worst(mode, $0) == .isolated }.count
                let what =
                    v == .transitional
                    ? "transitional virtio devices (disable-legacy=off)"
                    : "modern-only virtio devices (disable-legacy=on)"
                if w == axis.count && baseWorking < axis.count {
                    hints.append(
                        "\(b) works for every kernel with \(what) (as recorded: \(baseWorking) of \(axis.count))")
                } else if i > baseIsolated {
                    hints.append(
                        "\(b) isolates \(i) of \(axis.count) kernels with \(what) (as recorded: \(baseIsolated))")
                }
            }
        }
        self.hints = hints

        self.divergedTraces = m.traces.filter { t in diverged.contains { $0.hasPrefix("\(t)\u{0}") } }
        let warning =
            divergedTraces.isEmpty
            ? ""
            : "the recorded replay of \(divergedTraces.joined(separator: ", ")) diverged from the recording, so predictions from it are not trustworthy; "
        if !isolated.isEmpty {
            headline = "every kernel works with DMA isolated under: " + Self.collapse(isolated).joined(separator: ", ")
        } else if !working.isEmpty {
            headline =
                "every kernel works, without DMA isolation for some, under: "
                + Self.collapse(working.map(\.mode)).joined(separator: ", ") + "; no mode isolates every kernel"
        } else {
            headline = "no mode lets every kernel work" + (unsafe.isEmpty ? "" : " safely")
        }
        headline = warning + headline
    }

    enum CodingKeys: String, CodingKey {
        case kernels, eras, offAxis, grids, isolatedForEveryKernel, workingForEveryKernel, unsafeForEveryKernel,
            blockers
        case hints, headline, divergedTraces
    }

    /// Reads reports written before ``divergedTraces`` existed as having none.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kernels = try c.decode([String].self, forKey: .kernels)
        eras = try c.decode([Era].self, forKey: .eras)
        offAxis = try c.decode([OffAxis].self, forKey: .offAxis)
        grids = try c.decode([Grid].self, forKey: .grids)
        isolatedForEveryKernel = try c.decode([String].self, forKey: .isolatedForEveryKernel)
        workingForEveryKernel = try c.decode([ModeCost].self, forKey: .workingForEveryKernel)
        unsafeForEveryKernel = try c.decode([ModeCost].self, forKey: .unsafeForEveryKernel)
        blockers = try c.decode([Blocker].self, forKey: .blockers)
        hints = try c.decode([String].self, forKey: .hints)
        headline = try c.decode(String.self, forKey: .headline)
        divergedTraces = try c.decodeIfPresent([String].self, forKey: .divergedTraces) ?? []
    }
}
