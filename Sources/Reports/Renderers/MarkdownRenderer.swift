import Analysis
import Replay
import TraceFormat

/// GitHub-flavoured Markdown for CI job summaries. Never longer than ``limit`` bytes (GitHub rejects step
/// summaries over 1 MiB): when the full text would be longer, it is cut at a line boundary and a note says
/// how much was left out.
public struct MarkdownRenderer: ReportRenderer {
    /// GitHub's step-summary limit.
    public static let limit = 1_048_576
    public var limit: Int
    public init(limit: Int = MarkdownRenderer.limit) { self.limit = limit }
    public var format: ReportFormat { .markdown }

    /// Text from a trace, a model or a report as inline Markdown that renders as exactly that text: control
    /// characters escaped (``TextSafety``), `<`, `>`, `&` as entities (GitHub renders inline HTML), and the
    /// characters that start Markdown syntax inline backslash-escaped; `|` too, so it is safe in table cells.
    static func text(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for u in TextSafety.escaped(s).unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\\", "`", "*", "_", "[", "]", "|", "~", "#", "!", "$":
                out += "\\"
                out.unicodeScalars.append(u)
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// `s` as a code span: controls escaped, a fence longer than any run of backticks in it, `|` escaped (GitHub
    /// splits table cells on it even inside code spans).
    static func code(_ s: String) -> String {
        let t = TextSafety.escaped(s).replacingAll("|", with: "\\|")
        let fence = String(repeating: "`", count: longestRun(of: "`", in: t) + 1)
        let pad = t.hasPrefix("`") || t.hasSuffix("`") ? " " : ""
        return fence + pad + t + pad + fence
    }

    /// Lines as a fenced code block whose fence no line can close.
    static func codeBlock(_ lines: [String]) -> [String] {
        let body = lines.map { TextSafety.escaped($0) }
        let n = max(3, (body.map { longestRun(of: "`", in: $0) }.max() ?? 0) + 1)
        let fence = String(repeating: "`", count: n)
        return [fence] + body + [fence]
    }

    static func longestRun(of c: Character, in s: String) -> Int {
        var best = 0, run = 0
        for ch in s {
            if ch == c { run += 1; best = max(best, run) } else { run = 0 }
        }
        return best
    }

    private func cell(_ s: String) -> String { Self.text(s) }
    private func code(_ s: String) -> String { Self.code(s) }

    public func render(_ r: Report) throws -> String {
        var lines: [String] = []
        lines.append("# dmatrace \(r.command) report")
        lines.append("")
        let failing = r.findings.filter { r.isFailing($0) }.count
        lines.append(
            "**\(r.findings.count)** findings, **\(failing)** failing, \(r.traces.count) trace(s). dmatrace \(r.tool.version), report schema \(r.schemaVersion)."
        )
        for t in r.traces where !t.notes.isEmpty {
            lines.append("")
            lines.append("Notes on \(cell(t.name)):")
            for n in t.notes { lines.append("- " + cell(n)) }
        }
        if let d = r.diff {
            lines.append("")
            lines.append(
                "**Diff** \(cell(d.base)) → \(cell(d.new)): **\(d.newCount) new**, \(d.fixedCount) fixed, \(d.changedCount) changed, \(d.unchangedCount) unchanged."
            )
            if let b = d.baseCoverage, let n = d.newCoverage {
                lines.append("")
                lines.append("Coverage: base \(b.text); new \(n.text).")
            }
            if d.coverageShrank {
                lines.append("")
                lines.append("> [!WARNING]")
                lines.append(
                    "> **The new report covers less than the base**: \((d.coverageLost ?? []).map(cell).joined(separator: ", ")) missing. Findings there count as fixed without having been looked for."
                )
            }
        }
        if let m = r.matrix, let a = m.answer {
            lines.append("")
            lines.append("## Answer")
            lines.append("")
            lines.append("**\(cell(a.headline))**")
            if !a.unsafeForEveryKernel.isEmpty {
                lines.append("")
                lines.append(
                    "Unsafe alternative (every kernel runs, but DMA bypasses an IOMMU the guest trusts): "
                        + MatrixAnswer.collapse(a.unsafeForEveryKernel.map(\.mode)).map { "\(code($0))" }.joined(
                            separator: ", "))
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
                    let name = row.variant.map { underBase ? "↳ +\($0)" : "\(code(row.mode))" } ?? "\(code(row.mode))"
                    lines.append("| \(name) | " + row.cells.map(\.glyph).joined(separator: " | ") + " |")
                }
            }
            lines.append("")
            let used = Set(a.grids.flatMap { $0.rows.flatMap(\.cells) })
            lines.append(
                MatrixAnswer.Symbol.allCases.filter(used.contains).map { "\($0.glyph) \($0.meaning)" }.joined(
                    separator: " · "))
            lines.append("")
            lines.append(
                "Kernels: " + zip(labels, a.kernels).map { "\(cell($0)) = \(code($1))" }.joined(separator: ", "))
            if !a.blockers.isEmpty {
                lines.append("")
                lines.append("Why:")
                for b in a.blockers {
                    lines.append(
                        "- \(code(b.kernel)): \(b.failure.meaning) (\(cell(b.devices.joined(separator: ", ")))) under "
                            + MatrixAnswer.collapse(b.modes).map { "\(code($0))" }.joined(separator: ", ")
                            + (b.example.map { ": \(code($0))" } ?? ""))
                }
            }
            for h in a.hints { lines.append("- \(cell(h))") }
        } else if let m = r.matrix {
            lines.append("")
            lines.append("## Compatibility matrix")
            lines.append("")
            lines.append(
                "Modes that work for every kernel: "
                    + (m.modesWorkingForAllKernels.isEmpty
                        ? "**none**" : m.modesWorkingForAllKernels.map { "`\(cell($0))`" }.joined(separator: ", ")))
        }
        for f in r.fidelity {
            lines.append("")
            if let why = f.unavailableBecause {
                lines.append("Replay fidelity of \(cell(f.trace)): not checked: \(cell(why))")
            } else {
                lines.append(
                    "Replay fidelity of \(cell(f.trace)): recorded scenario \(cell(f.scenario ?? "?")) "
                        + (f.reproduced == true
                            ? "reproduced the trace." : "**diverges** from the trace in \(f.divergences) place(s)."))
            }
        }
        for d in r.dmaDebug {
            lines.append("")
            lines.append("## DMA-API debug: \(cell(d.trace))")
            lines.append("")
            lines.append(
                "\(d.dmaEvents) DMA-API events, \(d.violations.count) violations, \(d.liveAtEnd) mappings live at the end of the capture."
            )
            lines.append("")
            lines.append("| # | check | result |")
            lines.append("|---|---|---|")
            for c in d.checks {
                lines.append(
                    "| \(c.check.number) | \(code(c.check.rawValue)) | "
                        + (c.ran ? "\(c.violations) violation(s)" : "skipped: " + cell(c.skippedBecause ?? "")) + " |")
            }
        }
        if !r.findings.isEmpty {
            lines.append("")
            lines.append("## Findings")
            lines.append("")
            lines.append(
                "| severity | " + (r.diff == nil ? "" : "change | ")
                    + "rule | trace | scenario | device | count | first at | fingerprint |")
            lines.append("|---|" + (r.diff == nil ? "" : "---|") + "---|---|---|---|---|---|---|")
            for f in r.findings {
                var at = "–"
                if let o = f.first {
                    at = (o.sourceFile.map { "\($0):\(o.sourcePosition ?? 0)" } ?? "event #\(o.eventIndex)")
                }
                lines.append(
                    "| \(f.severity.rawValue) | " + (r.diff == nil ? "" : "\(r.changeLabel(f) ?? "") | ")
                        + "\(code(f.ruleID)) | \(cell(f.trace)) | \(cell(f.scenario)) | \(cell(f.device)) | \(f.count) | \(cell(at)) | \(code(f.fingerprint)) |"
                )
            }
            lines.append("")
            lines.append("## Details")
            for f in r.findings {
                lines.append("")
                lines.append("<details><summary>\(htmlEscape(TextSafety.escaped(f.message)))</summary>")
                lines.append("")
                lines.append(cell(f.explanation))
                lines.append("")
                lines.append("Rule: \(cell(f.rule))")
                if !f.guestLog.isEmpty || !f.hostLog.isEmpty {
                    lines.append("")
                    lines += Self.codeBlock(f.guestLog.map { "guest: \($0)" } + f.hostLog.map { "qemu:  \($0)" })
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
                let note =
                    "\n> **Truncated:** \(lines.count - i) of \(lines.count) lines left out to stay within \(limit) bytes; see the full report (JSON, HTML or SARIF artifact).\n"
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
