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
        th{background:#f1f3f5}td.ok{background:#d8f5dc}td.warn{background:#fff3c4}td.fail{background:#fbd5d5}td.none{color:#888}td.plain{background:#e3f0fb}
        table.grid td{text-align:center;min-width:2.2em}.answer{font-size:16px}
        a{color:#0b57d0}code,pre{font-family:ui-monospace,monospace;font-size:12px}pre{background:#f6f8fa;padding:8px;overflow-x:auto}
        .sev-error{color:#b3261e;font-weight:bold}.sev-warning{color:#8a6100;font-weight:bold}.sev-note{color:#0b57d0}
        .finding{border:1px solid #c8ccd1;border-radius:6px;padding:8px 12px;margin:10px 0}
        """

    public func render(_ r: Report) throws -> String {
        var h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        h +=
            "<title>dmatrace \(htmlEscape(r.command)) report</title>\n<style>\n\(Self.style)\n</style>\n</head>\n<body>\n"
        h += "<h1>dmatrace \(htmlEscape(r.command)) report</h1>\n"
        let failing = r.findings.filter { r.isFailing($0) }.count
        h +=
            "<p id=\"summary\"><strong>\(r.findings.count)</strong> findings, <strong>\(failing)</strong> failing, \(r.traces.count) trace(s). dmatrace \(htmlEscape(r.tool.version)), report schema \(r.schemaVersion).</p>\n"
        if let a = r.matrix?.answer { h += answerSection(a, matrix: r.matrix!, findings: r.findings) }
        if !r.traces.isEmpty {
            h += "<table id=\"traces\"><tr><th>trace</th><th>path</th><th>events</th><th>recorded under</th></tr>\n"
            for t in r.traces {
                h +=
                    "<tr><td>\(htmlEscape(t.name))</td><td><code>\(htmlEscape(t.path))</code></td><td>\(t.events)</td><td>\(htmlEscape(t.recordedScenario ?? "–"))</td></tr>\n"
            }
            h += "</table>\n"
            for t in r.traces where !t.notes.isEmpty {
                h +=
                    "<ul class=\"notes\">"
                    + t.notes.map { "<li>\(htmlEscape(t.name)): \(htmlEscape($0))</li>" }.joined() + "</ul>\n"
            }
        }
        if let d = r.diff {
            h +=
                "<h2 id=\"diff\">Diff</h2>\n<p><code>\(htmlEscape(d.base))</code> → <code>\(htmlEscape(d.new))</code>: <strong>\(d.newCount) new</strong>, \(d.fixedCount) fixed, \(d.changedCount) changed, \(d.unchangedCount) unchanged.</p>\n"
            if let b = d.baseCoverage, let n = d.newCoverage {
                h += "<p>Coverage: base \(htmlEscape(b.text)); new \(htmlEscape(n.text)).</p>\n"
            }
            if d.coverageShrank {
                h +=
                    "<p class=\"warning\"><strong>The new report covers less than the base</strong>: \(htmlEscape((d.coverageLost ?? []).joined(separator: ", "))) missing. Findings there count as fixed without having been looked for.</p>\n"
            }
        }
        if let m = r.matrix, m.answer == nil {
            h +=
                "<details id=\"matrix\"><summary>Worst verdict per kernel and mode (drill-down to findings)</summary>\n"
            if m.answer == nil {
                h +=
                    "<p>Modes that work for every kernel: <strong>"
                    + (m.modesWorkingForAllKernels.isEmpty
                        ? "none" : m.modesWorkingForAllKernels.map(htmlEscape).joined(separator: ", "))
                    + "</strong></p>\n"
            }
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
                        let tip = mine.map {
                            "\($0.device): \($0.verdict)"
                                + ($0.addressing.description.isEmpty ? "" : ", \($0.addressing)")
                        }.joined(separator: "; ")
                        if let fp = prints.sorted().first {
                            h +=
                                "<td class=\"\(cls)\" title=\"\(htmlEscape(tip))\"><a href=\"#f-\(fp)\">\(htmlEscape(v))</a>"
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
            h += "</details>\n"
        }
        for f in r.fidelity {
            h += "<p class=\"fidelity\">Replay fidelity of <strong>\(htmlEscape(f.trace))</strong>: "
            if let why = f.unavailableBecause {
                h += "not checked: \(htmlEscape(why))</p>\n"
            } else {
                h +=
                    "recorded scenario <code>\(htmlEscape(f.scenario ?? "?"))</code> "
                    + (f.reproduced == true
                        ? "reproduced the trace.</p>\n" : "diverges from the trace in \(f.divergences) place(s).</p>\n")
            }
        }
        for d in r.dmaDebug {
            h +=
                "<h2>DMA-API debug: \(htmlEscape(d.trace))</h2>\n<p>\(d.dmaEvents) DMA-API events, \(d.violations.count) violations, \(d.liveAtEnd) mappings live at the end of the capture.</p>\n"
            h += "<table><tr><th>#</th><th>check</th><th>result</th></tr>\n"
            for c in d.checks {
                h += "<tr><td>\(c.check.number)</td><td><code>\(c.check.rawValue)</code></td><td>"
                let name = Fingerprint.traceName(d.trace)
                if c.ran, c.violations > 0,
                    let f = r.findings.first(where: {
                        $0.origin == .dmaDebug && $0.trace == name && $0.key == c.check.rawValue
                    })
                {
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
        // Collapsed per rule, then per (trace, device): one full finding shown (the anchor `f-FINGERPRINT` of the
        // group), the others named by scenario, so the page stays small on a large matrix.
        for group in Self.groups(r.findings) {
            let f = group.findings[0]
            if group.firstOfRule {
                if group.index > 0 { h += "</details>\n" }
                let n = r.findings.filter { $0.ruleID == f.ruleID }.count
                h +=
                    "<details class=\"rule\"><summary><code>\(htmlEscape(f.ruleID))</code>: \(n) finding(s)</summary>\n"
            }
            let occurrences = group.findings.reduce(0) { $0 + $1.count }
            h += "<div class=\"finding\" id=\"f-\(f.fingerprint)\">\n"
            h += "<p><span class=\"sev-\(f.severity.rawValue)\">\(f.severity.rawValue)</span>"
            if let label = r.changeLabel(f) { h += " [\(label)]" }
            h += " <code>\(htmlEscape(f.ruleID))</code> — \(htmlEscape(f.message))</p>\n"
            h +=
                "<p>trace <strong>\(htmlEscape(f.trace))</strong>, device <strong>\(htmlEscape(f.device))</strong>: "
                + "\(group.findings.count) scenario(s), \(occurrences) occurrence(s). Shown: <strong>\(htmlEscape(f.scenario))</strong>, "
                + "fingerprint <code>\(f.fingerprint)</code></p>\n"
            if let o = f.first { h += "<p>First: <code>\(htmlEscape(describe(o)))</code></p>\n" }
            if let o = f.worst { h += "<p>Worst: <code>\(htmlEscape(describe(o)))</code></p>\n" }
            h += "<p>\(htmlEscape(f.explanation))</p>\n<p>Rule: \(htmlEscape(f.rule))</p>\n"
            if !f.guestLog.isEmpty || !f.hostLog.isEmpty {
                h += "<pre>"
                h += (f.guestLog.map { "guest: " + htmlEscape($0) } + f.hostLog.map { "qemu:  " + htmlEscape($0) })
                    .joined(separator: "\n")
                h += "</pre>\n"
            }
            if group.findings.count > 1 {
                h +=
                    "<p class=\"others\">Also under: "
                    + group.findings.dropFirst().map { o in
                        htmlEscape(o.scenario) + (r.changeLabel(o).map { " [\($0)]" } ?? "")
                    }.joined(separator: ", ") + "</p>\n"
            }
            h += "</div>\n"
        }
        if !r.findings.isEmpty { h += "</details>\n" }
        h += "</body>\n</html>\n"
        return h
    }

    /// The answer, the unsafe alternative, one kernel × mode grid per trace (cells link to the first finding of
    /// the cell), the legend, what blocks which modes and what a device property would change.
    func answerSection(_ a: MatrixAnswer, matrix m: CompatibilityMatrix, findings: [Finding]) -> String {
        var h = "<h2 id=\"answer\">Answer</h2>\n<p class=\"answer\"><strong>\(htmlEscape(a.headline))</strong></p>\n"
        if !a.unsafeForEveryKernel.isEmpty {
            h +=
                "<p class=\"unsafe\">Unsafe alternative (every kernel runs, but DMA bypasses an IOMMU the guest trusts: a guest "
                + "vfio, DPDK or nested VM on such a device corrupts memory silently): "
                + MatrixAnswer.collapse(a.unsafeForEveryKernel.map(\.mode)).map { "<code>\(htmlEscape($0))</code>" }
                .joined(separator: ", ") + "</p>\n"
        }
        let labels = AnswerText.labels(a.kernels)
        // Each cell links to the group (``groups(_:)``) holding its first finding.
        var anchor: [String: String] = [:]
        for g in Self.groups(findings) { for f in g.findings { anchor[f.fingerprint] = g.findings[0].fingerprint } }
        var firstFinding: [String: String] = [:]
        for c in m.cells {
            let key = "\(c.trace)\u{0}\(c.kernel)\u{0}\(c.mode)"
            if firstFinding[key] == nil, let f = c.findings.first(where: { anchor[$0] != nil }) {
                firstFinding[key] = anchor[f]
            }
        }
        for g in a.grids {
            h += "<h3>\(htmlEscape(g.trace))</h3>\n<table class=\"grid\"><tr><th>mode</th>"
            for (i, l) in labels.enumerated() { h += "<th title=\"\(htmlEscape(a.kernels[i]))\">\(htmlEscape(l))</th>" }
            h += "</tr>\n"
            for (i, row) in g.rows.enumerated() {
                let underBase = i > 0 && g.rows[i - 1].base == row.base
                h +=
                    "<tr><th>"
                    + (row.variant.map { underBase ? "&nbsp;&nbsp;+\(htmlEscape($0))" : htmlEscape(row.mode) }
                        ?? htmlEscape(row.mode)) + "</th>"
                for (i, sym) in row.cells.enumerated() {
                    let cls =
                        sym == .isolated
                        ? "ok"
                        : sym == .unisolated
                            ? "plain" : sym == .bypassesClaimedIOMMU ? "warn" : sym == .notRun ? "none" : "fail"
                    if let fp = firstFinding["\(g.trace)\u{0}\(a.kernels[i])\u{0}\(row.mode)"], sym != .isolated {
                        h += "<td class=\"\(cls)\"><a href=\"#f-\(fp)\">\(sym.glyph)</a></td>"
                    } else {
                        h += "<td class=\"\(cls)\">\(sym.glyph)</td>"
                    }
                }
                h += "</tr>\n"
            }
            h += "</table>\n"
        }
        let used = Set(a.grids.flatMap { $0.rows.flatMap(\.cells) })
        h +=
            "<p class=\"legend\">"
            + MatrixAnswer.Symbol.allCases.filter(used.contains).map { "\($0.glyph) \(htmlEscape($0.meaning))" }.joined(
                separator: " · ") + "</p>\n"
        h +=
            "<p class=\"kernels\">Kernels: "
            + zip(labels, a.kernels).map { "\(htmlEscape($0)) = <code>\(htmlEscape($1))</code>" }.joined(
                separator: ", ") + "</p>\n"
        if !a.blockers.isEmpty {
            h += "<h3>Why</h3>\n<ul class=\"why\">"
            for b in a.blockers {
                h +=
                    "<li><code>\(htmlEscape(b.kernel))</code>: \(htmlEscape(b.failure.meaning)) (\(htmlEscape(b.devices.joined(separator: ", ")))) under "
                    + MatrixAnswer.collapse(b.modes).map { "<code>\(htmlEscape($0))</code>" }.joined(separator: ", ")
                    + (b.example.map { ": <code>\(htmlEscape($0))</code>" } ?? "") + "</li>"
            }
            h += "</ul>\n"
        }
        if !a.hints.isEmpty {
            h += "<ul class=\"hints\">" + a.hints.map { "<li>\(htmlEscape($0))</li>" }.joined() + "</ul>\n"
        }
        return h
    }

    /// Findings grouped by rule (in order of first appearance), then by (trace, device), in report order.
    struct Group {
        var index: Int
        var firstOfRule: Bool
        var findings: [Finding]
    }

    static func groups(_ findings: [Finding]) -> [Group] {
        var rules: [String] = []
        for f in findings where !rules.contains(f.ruleID) { rules.append(f.ruleID) }
        var out: [Group] = []
        for rule in rules {
            var keys: [String] = []
            var byKey: [String: [Finding]] = [:]
            for f in findings where f.ruleID == rule {
                let key = "\(f.trace)\u{0}\(f.device)"
                if byKey[key] == nil { keys.append(key) }
                byKey[key, default: []].append(f)
            }
            for (i, key) in keys.enumerated() {
                out.append(Group(index: out.count, firstOfRule: i == 0, findings: byKey[key]!))
            }
        }
        return out
    }
}
