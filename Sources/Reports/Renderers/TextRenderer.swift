import Analysis
import Replay
import TraceFormat

/// Plain text for people. ANSI colour only when ``colour`` is set (the CLI sets it when stdout is a terminal).
public struct TextRenderer: ReportRenderer {
    public var colour: Bool
    /// In a diff report, also list the unchanged findings and the whole answer grid (`diff --all`).
    public var showUnchanged: Bool
    public init(colour: Bool = false, showUnchanged: Bool = false) {
        self.colour = colour
        self.showUnchanged = showUnchanged
    }
    public var format: ReportFormat { .text }

    private func paint(_ s: String, _ code: String) -> String { colour ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
    private func sev(_ s: FindingSeverity) -> String {
        switch s {
        case .error: paint("error", "1;31")
        case .warning: paint("warning", "33")
        case .note: paint("note", "36")
        }
    }

    /// Text from the report (trace names, paths, messages, logs) with control characters escaped
    /// (``TextSafety``): a crafted trace cannot drive the terminal, and colour codes are only ours.
    private func e(_ s: String) -> String { TextSafety.escaped(s) }

    public func render(_ r: Report) throws -> String {
        var out =
            "dmatrace \(e(r.command)) report (schema \(r.schemaVersion), \(e(r.tool.name)) \(e(r.tool.version)))\n"
        for t in r.traces {
            out += "trace \(e(t.name)): \(e(t.path)), \(t.events) events"
            if let s = t.recordedScenario { out += ", recorded under \(e(s))" }
            out += "\n"
            for n in t.notes { out += "  note: \(e(n))\n" }
        }
        if let d = r.diff {
            out += "\n"
            if let a = d.answer { out += (a.changed ? "answer changed: " : "answer: ") + a.text + "\n" }
            out +=
                "diff \(e(d.base)) → \(e(d.new)): \(d.newCount) new, \(d.fixedCount) fixed, \(d.changedCount) changed, \(d.unchangedCount) unchanged\n"
            if let b = d.baseCoverage, let n = d.newCoverage { out += "coverage: base \(b.text); new \(n.text)\n" }
            if d.coverageShrank {
                out +=
                    "WARNING: the new report covers less than the base (\(e((d.coverageLost ?? []).joined(separator: ", "))) missing): "
                    + "findings there count as fixed without having been looked for\n"
            }
        }
        if r.diff != nil && !showUnchanged {
            // A diff shows what changed; the answer line above says what the matrix answers now.
        } else if let a = r.matrix?.answer {
            out += "\n" + AnswerText.render(a, colour: colour)
        } else if let m = r.matrix {
            out += "\ncompatibility matrix (worst verdict over devices)\n"
            for t in m.traces {
                out += "  \(e(t))\n"
                let width = max(6, (m.kernels.map { e($0).count }.max() ?? 0))
                out += "    " + "kernel".padded(to: width)
                for mode in m.modes { out += "  " + e(mode) }
                out += "\n"
                for k in m.kernels {
                    out += "    " + e(k).padded(to: width)
                    for mode in m.modes {
                        let v = m.verdict(trace: t, kernel: k, mode: mode) ?? "-"
                        let cell = e(v).padded(to: e(mode).count)
                        out += "  " + (v == "ok" ? paint(cell, "32") : v == "-" ? cell : paint(cell, "31"))
                    }
                    out += "\n"
                }
            }
            out +=
                "  modes that work for every kernel: "
                + (m.modesWorkingForAllKernels.isEmpty
                    ? "none" : e(m.modesWorkingForAllKernels.joined(separator: ", "))) + "\n"
        }
        for f in r.fidelity {
            out += "\nreplay fidelity of \(e(f.trace)): "
            if let why = f.unavailableBecause {
                out += "not checked: \(e(why))\n"
            } else {
                out +=
                    "recorded scenario \(e(f.scenario ?? "?")) "
                    + (f.reproduced == true
                        ? "reproduced the trace" : "diverges from the trace in \(f.divergences) place(s)") + "\n"
            }
        }
        for d in r.dmaDebug {
            out += "\nDMA-API debug (offline CONFIG_DMA_API_DEBUG, \(d.era.rawValue) messages) on \(e(d.trace)): "
            out +=
                "\(d.dmaEvents) DMA-API events, \(d.violations.count) violations, \(d.liveAtEnd) mappings live at the end"
            if d.unmatchedBeforeCapture > 0 {
                out +=
                    ", \(d.unmatchedBeforeCapture) releases of addresses mapped before the capture started (not reported)"
            }
            if d.sgUnmapsWithoutMatch > 0 {
                out +=
                    ", \(d.sgUnmapsWithoutMatch) dma_unmap_sg entries without a live segment (merged or mapped before the capture)"
            }
            out += "\n"
            for c in d.checks {
                let mark =
                    !c.ran
                    ? paint("skip", "2")
                    : c.violations == 0
                        ? paint("pass", "32")
                        : c.check.severity == .error
                            ? paint("FAIL", "1;31")
                            : c.check.severity == .warning ? paint("WARN", "33") : paint("NOTE", "36")
                out += "  [\(mark)] #\(c.check.number) \(c.check.rawValue)"
                if c.ran { out += ": \(c.violations)" } else if let why = c.skippedBecause { out += ": \(e(why))" }
                out += "\n"
            }
        }
        let shown =
            r.diff.map { d in
                showUnchanged ? r.findings : r.findings.filter { d.status(of: $0.fingerprint) != .unchanged }
            } ?? r.findings
        if r.diff != nil && !showUnchanged {
            out +=
                "\n\(shown.count) finding\(shown.count == 1 ? "" : "s") new, fixed or changed (--all lists the \(r.findings.count - shown.count) unchanged too)\n"
        } else {
            out += "\n\(r.findings.count) finding\(r.findings.count == 1 ? "" : "s")\n"
        }
        for f in shown {
            out += "\n" + sev(f.severity)
            if let label = r.changeLabel(f) { out += " [\(e(label))]" }
            out += " \(e(f.ruleID)) \(e(f.trace)) \(e(f.scenario)) \(e(f.device)) ×\(f.count) [\(e(f.fingerprint))]\n"
            out += "  \(e(f.message))\n"
            if let o = f.first { out += "  first: \(e(describe(o)))\n" }
            if let o = f.worst { out += "  worst: \(e(describe(o)))\n" }
            out += "  why: \(e(f.explanation))\n  rule: \(e(f.rule))\n"
            for l in f.guestLog { out += "  guest| \(e(l))\n" }
            for l in f.hostLog { out += "  qemu | \(e(l))\n" }
        }
        return out
    }
}

extension String {
    /// Pads with spaces on the right to `width` characters (never truncates).
    func padded(to width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
