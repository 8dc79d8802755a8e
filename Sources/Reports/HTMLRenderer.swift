import Analysis
import Replay

/// A self-contained static HTML page: the compatibility matrix with every cell linking to its findings, the
/// DMA-API debug checks, and every finding with its occurrences and predicted log lines. No scripts, no
/// network, no external assets (inline CSS only), deterministic.
public struct HTMLRenderer: ReportRenderer {
    public init() {}
    public var format: ReportFormat { .html }

    static let style = """
        body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1b1f24;background:#fff}
        h1{font-size:22px}h2{font-size:18px;margin-top:28px}h3{font-size:15px}
        table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #c8ccd1;padding:4px 8px;text-align:left;vertical-align:top}
        th{background:#f1f3f5}td.ok{background:#d8f5dc}td.warn{background:#fff3c4}td.fail{background:#fbd5d5}td.none{color:#888}
        a{color:#0b57d0}code,pre{font-family:ui-monospace,monospace;font-size:12px}pre{background:#f6f8fa;padding:8px;overflow-x:auto}
        .sev-error{color:#b3261e;font-weight:bold}.sev-warning{color:#8a6100;font-weight:bold}.sev-note{color:#0b57d0}
        .finding{border:1px solid #c8ccd1;border-radius:6px;padding:8px 12px;margin:10px 0}
        """

    public func render(_ r: Report) throws -> String {
        var h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        h += "<title>dmatrace \(htmlEscape(r.command)) report</title>\n<style>\n\(Self.style)\n</style>\n</head>\n<body>\n"
        h += "<h1>dmatrace \(htmlEscape(r.command)) report</h1>\n"
        let failing = r.findings.filter { r.isFailing($0) }.count
        h += "<p id=\"summary\"><strong>\(r.findings.count)</strong> findings, <strong>\(failing)</strong> failing, \(r.traces.count) trace(s). dmatrace \(htmlEscape(r.tool.version)), report schema \(r.schemaVersion).</p>\n"
        if !r.traces.isEmpty {
            h += "<table id=\"traces\"><tr><th>trace</th><th>path</th><th>events</th><th>recorded under</th></tr>\n"
            for t in r.traces {
                h += "<tr><td>\(htmlEscape(t.name))</td><td><code>\(htmlEscape(t.path))</code></td><td>\(t.events)</td><td>\(htmlEscape(t.recordedScenario ?? "–"))</td></tr>\n"
            }
            h += "</table>\n"
            for t in r.traces where !t.notes.isEmpty {
                h += "<ul class=\"notes\">" + t.notes.map { "<li>\(htmlEscape(t.name)): \(htmlEscape($0))</li>" }.joined() + "</ul>\n"
            }
        }
        if let d = r.diff {
            h += "<h2 id=\"diff\">Diff</h2>\n<p><code>\(htmlEscape(d.base))</code> → <code>\(htmlEscape(d.new))</code>: <strong>\(d.newCount) new</strong>, \(d.fixedCount) fixed, \(d.changedCount) changed, \(d.unchangedCount) unchanged.</p>\n"
            if let b = d.baseCoverage, let n = d.newCoverage {
                h += "<p>Coverage: base \(htmlEscape(b.text)); new \(htmlEscape(n.text)).</p>\n"
            }
            if d.coverageShrank {
                h += "<p class=\"warning\"><strong>The new report covers less than the base</strong>: \(htmlEscape((d.coverageLost ?? []).joined(separator: ", "))) missing. Findings there count as fixed without having been looked for.</p>\n"
            }
        }
        if let m = r.matrix {
            h += "<h2 id=\"matrix\">Compatibility matrix</h2>\n"
            h += "<p>Modes that work for every kernel: <strong>" + (m.modesWorkingForAllKernels.isEmpty ? "none" : m.modesWorkingForAllKernels.map(htmlEscape).joined(separator: ", ")) + "</strong></p>\n"
            for t in m.traces {
                h += "<h3>\(htmlEscape(t))</h3>\n<table class=\"matrix\"><tr><th>kernel \\ mode</th>"
                for mode in m.modes { h += "<th>\(htmlEscape(mode))</th>" }
                h += "</tr>\n"
                for k in m.kernels {
                    h += "<tr><th>\(htmlEscape(k))</th>"
                    for mode in m.modes {
                        guard let v = m.verdict(trace: t, kernel: k, mode: mode) else {
                            h += "<td class=\"none\">not run</td>"
                            continue
                        }
                        let cls = v == "ok" ? "ok" : v == "untranslated-while-claimed" || v == "stale" ? "warn" : "fail"
                        let mine = m.cells.filter { $0.trace == t && $0.kernel == k && $0.mode == mode }
                        let prints = mine.flatMap(\.findings)
                        let tip = mine.map { "\($0.device): \($0.verdict)" + ($0.addressing.isEmpty ? "" : ", \($0.addressing)") }.joined(separator: "; ")
                        if let fp = prints.sorted().first {
                            h += "<td class=\"\(cls)\" title=\"\(htmlEscape(tip))\"><a href=\"#f-\(fp)\">\(htmlEscape(v))</a>"
                            if prints.count > 1 { h += " (\(prints.count))" }
                            h += "</td>"
                        } else {
                            h += "<td class=\"\(cls)\" title=\"\(htmlEscape(tip))\">\(htmlEscape(v))</td>"
                        }
                    }
                    h += "</tr>\n"
                }
                h += "</table>\n"
            }
        }
        for f in r.fidelity {
            h += "<p class=\"fidelity\">Replay fidelity of <strong>\(htmlEscape(f.trace))</strong>: "
            if let why = f.unavailableBecause {
                h += "not checked: \(htmlEscape(why))</p>\n"
            } else {
                h += "recorded scenario <code>\(htmlEscape(f.scenario ?? "?"))</code> " + (f.reproduced == true ? "reproduced the trace.</p>\n" : "diverges from the trace in \(f.divergences) place(s).</p>\n")
            }
        }
        for d in r.dmaDebug {
            h += "<h2>DMA-API debug: \(htmlEscape(d.trace))</h2>\n<p>\(d.dmaEvents) DMA-API events, \(d.violations.count) violations, \(d.liveAtEnd) mappings live at the end of the capture.</p>\n"
            h += "<table><tr><th>#</th><th>check</th><th>result</th></tr>\n"
            for c in d.checks {
                h += "<tr><td>\(c.check.number)</td><td><code>\(c.check.rawValue)</code></td><td>"
                let name = Fingerprint.traceName(d.trace)
                if c.ran, c.violations > 0,
                   let f = r.findings.first(where: { $0.origin == .dmaDebug && $0.trace == name && $0.key == c.check.rawValue }) {
                    h += "<a href=\"#f-\(f.fingerprint)\">\(c.violations) violation(s)</a>"
                } else {
                    h += c.ran ? "\(c.violations) violation(s)" : "skipped: " + htmlEscape(c.skippedBecause ?? "")
                }
                h += "</td></tr>\n"
            }
            h += "</table>\n"
        }
        h += "<h2 id=\"findings\">Findings</h2>\n"
        if r.findings.isEmpty { h += "<p>No findings.</p>\n" }
        for f in r.findings {
            h += "<div class=\"finding\" id=\"f-\(f.fingerprint)\">\n"
            h += "<p><span class=\"sev-\(f.severity.rawValue)\">\(f.severity.rawValue)</span>"
            if let label = r.changeLabel(f) { h += " [\(label)]" }
            h += " <code>\(htmlEscape(f.ruleID))</code> — \(htmlEscape(f.message))</p>\n"
            h += "<p>trace <strong>\(htmlEscape(f.trace))</strong>, scenario <strong>\(htmlEscape(f.scenario))</strong>, device <strong>\(htmlEscape(f.device))</strong>, \(f.count) occurrence(s), fingerprint <code>\(f.fingerprint)</code></p>\n"
            if let o = f.first { h += "<p>First: <code>\(htmlEscape(describe(o)))</code></p>\n" }
            if let o = f.worst { h += "<p>Worst: <code>\(htmlEscape(describe(o)))</code></p>\n" }
            h += "<p>\(htmlEscape(f.explanation))</p>\n<p>Rule: \(htmlEscape(f.rule))</p>\n"
            if !f.guestLog.isEmpty || !f.hostLog.isEmpty {
                h += "<pre>"
                h += (f.guestLog.map { "guest: " + htmlEscape($0) } + f.hostLog.map { "qemu:  " + htmlEscape($0) }).joined(separator: "\n")
                h += "</pre>\n"
            }
            h += "</div>\n"
        }
        h += "</body>\n</html>\n"
        return h
    }
}
