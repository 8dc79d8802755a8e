import Analysis
import Replay

/// GitHub-flavoured Markdown for CI job summaries. Never longer than ``limit`` bytes (GitHub rejects step
/// summaries over 1 MiB): when the full text would be longer, it is cut at a line boundary and a note says
/// how much was left out.
public struct MarkdownRenderer: ReportRenderer {
    /// GitHub's step-summary limit.
    public static let limit = 1_048_576
    public var limit: Int
    public init(limit: Int = MarkdownRenderer.limit) { self.limit = limit }
    public var format: ReportFormat { .markdown }

    private func cell(_ s: String) -> String {
        s.replacingAll("|", with: "\\|").replacingAll("\n", with: " ")
    }

    public func render(_ r: Report) throws -> String {
        var lines: [String] = []
        lines.append("# dmatrace \(r.command) report")
        lines.append("")
        let failing = r.findings.filter { r.isFailing($0) }.count
        lines.append("**\(r.findings.count)** findings, **\(failing)** failing, \(r.traces.count) trace(s). dmatrace \(r.tool.version), report schema \(r.schemaVersion).")
        for t in r.traces where !t.notes.isEmpty {
            lines.append("")
            lines.append("Notes on `\(t.name)`:")
            for n in t.notes { lines.append("- " + n) }
        }
        if let d = r.diff {
            lines.append("")
            lines.append("**Diff** `\(d.base)` → `\(d.new)`: **\(d.newCount) new**, \(d.fixedCount) fixed, \(d.changedCount) changed, \(d.unchangedCount) unchanged.")
            if let b = d.baseCoverage, let n = d.newCoverage {
                lines.append("")
                lines.append("Coverage: base \(b.text); new \(n.text).")
            }
            if d.coverageShrank {
                lines.append("")
                lines.append("> [!WARNING]")
                lines.append("> **The new report covers less than the base**: \((d.coverageLost ?? []).map { "`\($0)`" }.joined(separator: ", ")) missing. Findings there count as fixed without having been looked for.")
            }
        }
        if let m = r.matrix, let a = m.answer {
            lines.append("")
            lines.append("## Answer")
            lines.append("")
            lines.append("**\(cell(a.headline))**")
            if !a.unsafeForEveryKernel.isEmpty {
                lines.append("")
                lines.append("Unsafe alternative (every kernel runs, but DMA bypasses an IOMMU the guest trusts): "
                    + MatrixAnswer.collapse(a.unsafeForEveryKernel.map(\.mode)).map { "`\(cell($0))`" }.joined(separator: ", "))
            }
            let labels = AnswerText.labels(a.kernels)
            for g in a.grids {
                lines.append("")
                lines.append("### \(cell(g.trace))")
                lines.append("")
                lines.append("| mode | " + labels.map(cell).joined(separator: " | ") + " |")
                lines.append("|---|" + String(repeating: "---|", count: labels.count))
                for (i, row) in g.rows.enumerated() {
                    let underBase = i > 0 && g.rows[i - 1].base == row.base
                    let name = row.variant.map { underBase ? "↳ +\($0)" : "`\(cell(row.mode))`" } ?? "`\(cell(row.mode))`"
                    lines.append("| \(name) | " + row.cells.map(\.glyph).joined(separator: " | ") + " |")
                }
            }
            lines.append("")
            let used = Set(a.grids.flatMap { $0.rows.flatMap(\.cells) })
            lines.append(MatrixAnswer.Symbol.allCases.filter(used.contains).map { "\($0.glyph) \($0.meaning)" }.joined(separator: " · "))
            lines.append("")
            lines.append("Kernels: " + zip(labels, a.kernels).map { "\(cell($0)) = `\(cell($1))`" }.joined(separator: ", "))
            if !a.blockers.isEmpty {
                lines.append("")
                lines.append("Why:")
                for b in a.blockers {
                    lines.append("- `\(cell(b.kernel))`: \(b.failure.meaning) (\(cell(b.devices.joined(separator: ", ")))) under "
                        + MatrixAnswer.collapse(b.modes).map { "`\(cell($0))`" }.joined(separator: ", ") + (b.example.map { ": `\(cell($0))`" } ?? ""))
                }
            }
            for h in a.hints { lines.append("- \(cell(h))") }
        } else if let m = r.matrix {
            lines.append("")
            lines.append("## Compatibility matrix")
            lines.append("")
            lines.append("Modes that work for every kernel: " + (m.modesWorkingForAllKernels.isEmpty ? "**none**" : m.modesWorkingForAllKernels.map { "`\($0)`" }.joined(separator: ", ")))
        }
        for f in r.fidelity {
            lines.append("")
            if let why = f.unavailableBecause {
                lines.append("Replay fidelity of `\(f.trace)`: not checked: \(cell(why))")
            } else {
                lines.append("Replay fidelity of `\(f.trace)`: recorded scenario `\(f.scenario ?? "?")` " + (f.reproduced == true ? "reproduced the trace." : "**diverges** from the trace in \(f.divergences) place(s)."))
            }
        }
        for d in r.dmaDebug {
            lines.append("")
            lines.append("## DMA-API debug: \(cell(d.trace))")
            lines.append("")
            lines.append("\(d.dmaEvents) DMA-API events, \(d.violations.count) violations, \(d.liveAtEnd) mappings live at the end of the capture.")
            lines.append("")
            lines.append("| # | check | result |")
            lines.append("|---|---|---|")
            for c in d.checks {
                lines.append("| \(c.check.number) | `\(c.check.rawValue)` | " + (c.ran ? "\(c.violations) violation(s)" : "skipped: " + cell(c.skippedBecause ?? "")) + " |")
            }
        }
        if !r.findings.isEmpty {
            lines.append("")
            lines.append("## Findings")
            lines.append("")
            lines.append("| severity | " + (r.diff == nil ? "" : "change | ") + "rule | trace | scenario | device | count | first at | fingerprint |")
            lines.append("|---|" + (r.diff == nil ? "" : "---|") + "---|---|---|---|---|---|---|")
            for f in r.findings {
                var at = "–"
                if let o = f.first { at = (o.sourceFile.map { "\($0):\(o.sourcePosition ?? 0)" } ?? "event #\(o.eventIndex)") }
                lines.append("| \(f.severity.rawValue) | " + (r.diff == nil ? "" : "\(r.changeLabel(f) ?? "") | ")
                    + "`\(f.ruleID)` | \(cell(f.trace)) | \(cell(f.scenario)) | \(cell(f.device)) | \(f.count) | \(cell(at)) | `\(f.fingerprint)` |")
            }
            lines.append("")
            lines.append("## Details")
            for f in r.findings {
                lines.append("")
                lines.append("<details><summary>\(htmlEscape(f.message))</summary>")
                lines.append("")
                lines.append(f.explanation)
                lines.append("")
                lines.append("Rule: \(f.rule)")
                if !f.guestLog.isEmpty || !f.hostLog.isEmpty {
                    lines.append("")
                    lines.append("```")
                    for l in f.guestLog { lines.append("guest: \(l)") }
                    for l in f.hostLog { lines.append("qemu:  \(l)") }
                    lines.append("```")
                }
                lines.append("")
                lines.append("</details>")
            }
        }
        return Self.fit(lines, limit: limit)
    }

    /// Joins `lines`, cutting at a line boundary so that the text plus the truncation note stays within `limit`.
    static func fit(_ lines: [String], limit: Int) -> String {
        var out = ""
        var size = 0
        for (i, line) in lines.enumerated() {
            let n = line.utf8.count + 1
            if size + n > limit - 200 {
                let note = "\n> **Truncated:** \(lines.count - i) of \(lines.count) lines left out to stay within \(limit) bytes; see the full report (JSON, HTML or SARIF artifact).\n"
                return out + note
            }
            out += line + "\n"
            size += n
        }
        return out
    }
}

extension String {
    /// Every occurrence of `target` replaced by `replacement` (without Foundation).
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty, contains(target) else { return self }
        var out = ""
        var rest = self[...]
        while let r = rest.firstRange(of: target) {
            out += rest[..<r.lowerBound] + replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

/// Escapes text for HTML (same rules as XML).
func htmlEscape(_ s: String) -> String { xmlEscape(s) }
