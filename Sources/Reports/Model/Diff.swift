import Analysis
import Replay

/// The state of one finding between a baseline and a new report (SARIF `baselineState` vocabulary).
public enum ChangeStatus: String, Sendable, Codable, CaseIterable {
    /// Only in the new report: a regression.
    case new
    /// Only in the baseline: fixed.
    case fixed
    /// In both, but its count, severity or predicted log lines differ.
    case changed
    /// In both and the same.
    case unchanged
}

/// What `--fail-on` fails on.
public enum FailOn: String, Sendable, Codable, CaseIterable {
    /// New findings only.
    case new
    /// Changed findings only.
    case changed
    /// New or changed findings (fixed ones never fail a build).
    case any
}

/// The status of one fingerprint in a diff.
public struct FindingChange: Sendable, Codable, Equatable {
    public var fingerprint: String
    public var status: ChangeStatus
    /// Count in the baseline (nil for new findings).
    public var baseCount: Int?
    /// Count in the new report (nil for fixed findings).
    public var newCount: Int?
    /// What changed, in words (`count 3 → 5`, `severity warning → error`, `guest log`), for changed findings.
    public var what: [String]
}

/// The answer to the origin thread's question on either side of a diff: what a reader wants first.
public struct AnswerChange: Sendable, Codable, Equatable {
    /// Modes in which every kernel works (isolated or honestly not), base and new.
    public var baseWorking: [String]
    public var newWorking: [String]
    /// Modes in which every kernel works with DMA isolated.
    public var baseIsolated: [String]
    public var newIsolated: [String]

    /// From the two reports' matrices (a schema-1 report without an answer gives its working modes only).
    init?(base: Report, new: Report) {
        guard base.matrix != nil || new.matrix != nil else { return nil }
        baseWorking = base.matrix?.modesWorkingForAllKernels ?? []
        newWorking = new.matrix?.modesWorkingForAllKernels ?? []
        baseIsolated = base.matrix?.answer?.isolatedForEveryKernel ?? []
        newIsolated = new.matrix?.answer?.isolatedForEveryKernel ?? []
    }

    public var changed: Bool { baseWorking != newWorking || baseIsolated != newIsolated }

    /// `modes that work for every kernel: {a, b} → {b}` (and the isolated ones when they changed).
    public var text: String {
        func set(_ xs: [String]) -> String { "{" + MatrixAnswer.collapse(xs).joined(separator: ", ") + "}" }
        var out =
            "modes that work for every kernel: "
            + (baseWorking == newWorking
                ? "\(set(newWorking)) (unchanged)" : "\(set(baseWorking)) → \(set(newWorking))")
        if baseIsolated != newIsolated { out += "; with DMA isolated: \(set(baseIsolated)) → \(set(newIsolated))" }
        return out
    }
}

/// The diff part of a `diff` report.
public struct DiffSummary: Sendable, Codable, Equatable {
    /// The base report's path (as given).
    public var base: String
    /// The new report's path (as given).
    public var new: String
    public var newCount: Int
    public var fixedCount: Int
    public var changedCount: Int
    public var unchangedCount: Int
    /// Every fingerprint of either report, sorted by fingerprint.
    public var changes: [FindingChange]
    /// What the base report covers (absent in diffs written before coverage was recorded).
    public var baseCoverage: Coverage?
    /// What the new report covers.
    public var newCoverage: Coverage?
    /// What the base covers and the new report does not (`trace t`, `kernel k`, `mode m`, `device t d`):
    /// findings there are not "fixed", they were not looked for. `dmatrace diff` and `--baseline` refuse such
    /// a diff unless `--allow-coverage-change`, and then every renderer says so.
    public var coverageLost: [String]?

    /// The answer of either side (absent when neither report has a matrix).
    public var answer: AnswerChange?

    /// True when the new report covers less than the base.
    public var coverageShrank: Bool { !(coverageLost ?? []).isEmpty }

    /// The status of `fingerprint`, nil when it is in neither report.
    public func status(of fingerprint: String) -> ChangeStatus? {
        changes.first { $0.fingerprint == fingerprint }?.status
    }

    /// True when the diff contains what `failOn` fails on.
    public func fails(on failOn: FailOn) -> Bool {
        switch failOn {
        case .new: newCount > 0
        case .changed: changedCount > 0
        case .any: newCount > 0 || changedCount > 0
        }
    }
}

/// What a report looked at: the traces, and from its matrix the kernels, modes and devices (per trace).
public struct Coverage: Sendable, Codable, Equatable {
    public var traces: [String]
    public var kernels: [String]
    public var modes: [String]
    /// `TRACE DEVICE`, sorted.
    public var devices: [String]

    public init(traces: [String], kernels: [String], modes: [String], devices: [String]) {
        self.traces = traces
        self.kernels = kernels
        self.modes = modes
        self.devices = devices
    }

    public init(_ report: Report) {
        traces = Set(report.traces.map(\.name)).sorted()
        kernels = Set(report.matrix?.kernels ?? []).sorted()
        modes = Set(report.matrix?.modes ?? []).sorted()
        devices = Set((report.matrix?.cells ?? []).map { "\($0.trace) \($0.device)" }).sorted()
    }

    /// `6 traces, 5 kernels, 12 modes, 14 devices`.
    public var text: String {
        "\(traces.count) trace(s), \(kernels.count) kernel(s), \(modes.count) mode(s), \(devices.count) device(s)"
    }

    /// What `self` covers and `other` does not, as `trace t`, `kernel k`, `mode m`, `device t d`.
    public func missing(from other: Coverage) -> [String] {
        func gone(_ a: [String], _ b: [String], _ label: String) -> [String] {
            let have = Set(b)
            return a.filter { !have.contains($0) }.map { "\(label) \($0)" }
        }
        return gone(traces, other.traces, "trace") + gone(kernels, other.kernels, "kernel")
            + gone(modes, other.modes, "mode")
            + gone(devices, other.devices, "device")
    }
}

/// A diff whose new report covers less than its base (``DiffSummary/coverageLost``), refused unless
/// `--allow-coverage-change`.
public struct CoverageShrankError: Error, Equatable, Sendable, CustomStringConvertible {
    public var base: String
    public var new: String
    public var lost: [String]

    public init(base: String, new: String, lost: [String]) {
        self.base = base
        self.new = new
        self.lost = lost
    }

    public var description: String {
        let shown = lost.prefix(10).joined(separator: ", ") + (lost.count > 10 ? ", … (\(lost.count) in all)" : "")
        return "\(new): covers less than the base \(base): \(shown) missing; its findings there would count as fixed "
            + "(--allow-coverage-change reports the diff anyway)"
    }
}

/// Comparison of two reports by finding fingerprint (stable across reruns, see `Finding.fingerprint`). Callable
/// from `replay --baseline` and `matrix --baseline` as well as `dmatrace diff`.
public enum Diff {
    /// Compares `base` and `new`; the paths only label the result.
    public static func compare(base: Report, new: Report, basePath: String = "base", newPath: String = "new")
        -> DiffSummary
    {
        var baseBy: [String: Finding] = [:]
        for f in base.findings { baseBy[f.fingerprint] = f }
        var newBy: [String: Finding] = [:]
        for f in new.findings { newBy[f.fingerprint] = f }
        var changes: [FindingChange] = []
        for fp in Set(baseBy.keys).union(newBy.keys).sorted() {
            switch (baseBy[fp], newBy[fp]) {
            case (nil, let n?):
                changes.append(
                    FindingChange(fingerprint: fp, status: .new, baseCount: nil, newCount: n.count, what: []))
            case (let b?, nil):
                changes.append(
                    FindingChange(fingerprint: fp, status: .fixed, baseCount: b.count, newCount: nil, what: []))
            case (let b?, let n?):
                var what: [String] = []
                if b.count != n.count { what.append("count \(b.count) → \(n.count)") }
                if b.severity != n.severity { what.append("severity \(b.severity.rawValue) → \(n.severity.rawValue)") }
                if b.guestLog != n.guestLog { what.append("guest log") }
                if b.hostLog != n.hostLog { what.append("host log") }
                changes.append(
                    FindingChange(
                        fingerprint: fp, status: what.isEmpty ? .unchanged : .changed, baseCount: b.count,
                        newCount: n.count, what: what))
            case (nil, nil):
                break
            }
        }
        func n(_ s: ChangeStatus) -> Int { changes.filter { $0.status == s }.count }
        let bc = Coverage(base), nc = Coverage(new)
        return DiffSummary(
            base: basePath, new: newPath, newCount: n(.new), fixedCount: n(.fixed), changedCount: n(.changed),
            unchangedCount: n(.unchanged), changes: changes, baseCoverage: bc, newCoverage: nc,
            coverageLost: bc.missing(from: nc),
            answer: AnswerChange(base: base, new: new))
    }

    /// A `diff` report: the new report's findings and matrix plus the fixed findings of the baseline, with
    /// the diff summary, so every renderer can show it.
    /// Throws ``CoverageShrankError`` when the new report covers less than the base, unless `allowCoverageChange`.
    public static func report(
        base: Report, new: Report, basePath: String, newPath: String, allowCoverageChange: Bool
    ) throws -> Report {
        let r = report(base: base, new: new, basePath: basePath, newPath: newPath)
        if let d = r.diff, d.coverageShrank, !allowCoverageChange {
            throw CoverageShrankError(base: basePath, new: newPath, lost: d.coverageLost ?? [])
        }
        return r
    }

    public static func report(base: Report, new: Report, basePath: String, newPath: String) -> Report {
        let summary = compare(base: base, new: new, basePath: basePath, newPath: newPath)
        let newPrints = Set(new.findings.map(\.fingerprint))
        let fixed = base.findings.filter { !newPrints.contains($0.fingerprint) }
        var traces = new.traces
        for t in base.traces where !traces.contains(where: { $0.name == t.name }) { traces.append(t) }
        return Report(
            command: "diff", traces: traces, matrix: new.matrix, findings: new.findings + fixed,
            dmaDebug: new.dmaDebug, diff: summary, fidelity: new.fidelity, toolVersion: new.tool.version)
    }
}
