import Analysis
import Replay

/// Plain text for people. ANSI colour only when ``colour`` is set (the CLI sets it when stdout is a terminal).
public struct TextRenderer: ReportRenderer {
    public var colour: Bool
    public init(colour: Bool = false) { self.colour = colour }
    public var format: ReportFormat { .text }

    private func paint(_ s: String, _ code: String) -> String { colour ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
    private func sev(_ s: FindingSeverity) -> String {
        switch s {
        case .error: paint("error", "1;31")
        case .warning: paint("warning", "33")
        case .note: paint("note", "36")
        }
    }

    public func render(_ r: Report) throws -> String {
        var out = "dmatrace \(r.command) report (schema \(r.schemaVersion), \(r.tool.name) \(r.tool.version))\n"
        for t in r.traces {
            out += "trace \(t.name): \(t.path), \(t.events) events"
            if let s = t.recordedScenario { out += ", recorded under \(s)" }
            out += "\n"
            for n in t.notes { out += "  note: \(n)\n" }
        }
        if let d = r.diff {
            out += "\ndiff \(d.base) → \(d.new): \(d.newCount) new, \(d.fixedCount) fixed, \(d.changedCount) changed, \(d.unchangedCount) unchanged\n"
            if let b = d.baseCoverage, let n = d.newCoverage { out += "coverage: base \(b.text); new \(n.text)\n" }
            if d.coverageShrank {
                out += "WARNING: the new report covers less than the base (\((d.coverageLost ?? []).joined(separator: ", ")) missing): "
                    + "findings there count as fixed without having been looked for\n"
            }
        }
        if let a = r.matrix?.answer {
            out += "\n" + AnswerText.render(a, colour: colour)
        } else if let m = r.matrix {
            out += "\ncompatibility matrix (worst verdict over devices)\n"
            for t in m.traces {
                out += "  \(t)\n"
                let width = max(6, (m.kernels.map(\.count).max() ?? 0))
                out += "    " + "kernel".padded(to: width)
                for mode in m.modes { out += "  " + mode }
                out += "\n"
                for k in m.kernels {
                    out += "    " + k.padded(to: width)
                    for mode in m.modes {
                        let v = m.verdict(trace: t, kernel: k, mode: mode) ?? "-"
                        let cell = v.padded(to: mode.count)
                        out += "  " + (v == "ok" ? paint(cell, "32") : v == "-" ? cell : paint(cell, "31"))
                    }
                    out += "\n"
                }
            }
            out += "  modes that work for every kernel: "
                + (m.modesWorkingForAllKernels.isEmpty ? "none" : m.modesWorkingForAllKernels.joined(separator: ", ")) + "\n"
        }
        for f in r.fidelity {
            out += "\nreplay fidelity of \(f.trace): "
            if let why = f.unavailableBecause {
                out += "not checked: \(why)\n"
            } else {
                out += "recorded scenario \(f.scenario ?? "?") " + (f.reproduced == true ? "reproduced the trace" : "diverges from the trace in \(f.divergences) place(s)") + "\n"
            }
        }
        for d in r.dmaDebug {
            out += "\nDMA-API debug (offline CONFIG_DMA_API_DEBUG, \(d.era.rawValue) messages) on \(d.trace): "
            out += "\(d.dmaEvents) DMA-API events, \(d.violations.count) violations, \(d.liveAtEnd) mappings live at the end"
            if d.unmatchedBeforeCapture > 0 {
                out += ", \(d.unmatchedBeforeCapture) releases of addresses mapped before the capture started (not reported)"
            }
            if d.sgUnmapsWithoutMatch > 0 {
                out += ", \(d.sgUnmapsWithoutMatch) dma_unmap_sg entries without a live segment (merged or mapped before the capture)"
            }
            out += "\n"
            for c in d.checks {
                let mark = !c.ran ? paint("skip", "2") : c.violations == 0 ? paint("pass", "32")
                    : c.check.severity == .error ? paint("FAIL", "1;31") : c.check.severity == .warning ? paint("WARN", "33") : paint("NOTE", "36")
                out += "  [\(mark)] #\(c.check.number) \(c.check.rawValue)"
                if c.ran { out += ": \(c.violations)" } else if let why = c.skippedBecause { out += ": \(why)" }
                out += "\n"
            }
        }
        out += "\n\(r.findings.count) finding\(r.findings.count == 1 ? "" : "s")\n"
        for f in r.findings {
            out += "\n" + sev(f.severity)
            if let label = r.changeLabel(f) { out += " [\(label)]" }
            out += " \(f.ruleID) \(f.trace) \(f.scenario) \(f.device) ×\(f.count) [\(f.fingerprint)]\n"
            out += "  \(f.message)\n"
            if let o = f.first { out += "  first: \(describe(o))\n" }
            if let o = f.worst { out += "  worst: \(describe(o))\n" }
            out += "  why: \(f.explanation)\n  rule: \(f.rule)\n"
            for l in f.guestLog { out += "  guest| \(l)\n" }
            for l in f.hostLog { out += "  qemu | \(l)\n" }
        }
        return out
    }
}

extension String {
    /// Pads with spaces on the right to `width` characters (never truncates).
    func padded(to width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
