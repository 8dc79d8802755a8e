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

/// Comparison of two reports by finding fingerprint (stable across reruns, see `Finding.fingerprint`). Callable
/// from `replay --baseline` and `matrix --baseline` as well as `dmatrace diff`.
public enum Diff {
    /// Compares `base` and `new`; the paths only label the result.
    public static func compare(base: Report, new: Report, basePath: String = "base", newPath: String = "new") -> DiffSummary {
        var baseBy: [String: Finding] = [:]
        for f in base.findings { baseBy[f.fingerprint] = f }
        var newBy: [String: Finding] = [:]
        for f in new.findings { newBy[f.fingerprint] = f }
        var changes: [FindingChange] = []
        for fp in Set(baseBy.keys).union(newBy.keys).sorted() {
            switch (baseBy[fp], newBy[fp]) {
            case (nil, let n?):
                changes.append(FindingChange(fingerprint: fp, status: .new, baseCount: nil, newCount: n.count, what: []))
            case (let b?, nil):
                changes.append(FindingChange(fingerprint: fp, status: .fixed, baseCount: b.count, newCount: nil, what: []))
            case (let b?, let n?):
                var what: [String] = []
                if b.count != n.count { what.append("count \(b.count) → \(n.count)") }
                if b.severity != n.severity { what.append("severity \(b.severity.rawValue) → \(n.severity.rawValue)") }
                if b.guestLog != n.guestLog { what.append("guest log") }
                if b.hostLog != n.hostLog { what.append("host log") }
                changes.append(FindingChange(
                    fingerprint: fp, status: what.isEmpty ? .unchanged : .changed, baseCount: b.count,
                    newCount: n.count, what: what))
            case (nil, nil):
                break
            }
        }
        func n(_ s: ChangeStatus) -> Int { changes.filter { $0.status == s }.count }
        return DiffSummary(
            base: basePath, new: newPath, newCount: n(.new), fixedCount: n(.fixed), changedCount: n(.changed),
            unchangedCount: n(.unchanged), changes: changes)
    }

    /// A `diff` report: the new report's findings and matrix plus the fixed findings of the baseline, with
    /// the diff summary, so every renderer can show it.
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
