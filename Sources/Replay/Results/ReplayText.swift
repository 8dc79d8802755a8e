import TraceFormat

extension ReplayResult {
    /// Plain-text rendering for people (the Reports layer has the full renderers); deterministic.
    public func text() -> String {
        var out = "trace \(trace): \(events) events, \(scenarios.count) scenario(s)\n"
        for s in scenarios {
            out += "\nscenario \(s.id)\(s.isRecorded ? " (recorded)" : ""): \(s.verdict)\n"
            for d in s.devices {
                out += "  \(d.device): \(d.verdict.rawValue) (\(d.addressing), \(d.accesses) accesses)\n"
                for g in d.groups {
                    out +=
                        "    \(g.outcome.rawValue) [\(g.key)] x\(g.count)\(g.stray ? " (stray DMA, not counted in the verdict)" : "")\n"
                    if let f = g.first { out += "      first: \(f.text)\n" }
                    if let w = g.worst { out += "      worst: \(w.text)\n" }
                    out += "      why: \(g.explanation)\n"
                    out += "      rule: \(g.rule)\n"
                    for l in g.guestLog { out += "      guest: \(l)\n" }
                    for l in g.hostLog.prefix(3) { out += "      host: \(l)\n" }
                    if g.hostLog.count > 3 { out += "      host: ... \(g.hostLog.count - 3) more\n" }
                }
            }
            if s.isRecorded {
                out += "  " + s.fidelityLine + "\n"
                for d in s.divergences { out += "    \(d.device ?? "-"): \(d.what) at \(d.at.text)\n" }
            }
        }
        if !notes.isEmpty {
            out += "\nnotes:\n"
            for n in notes { out += "  \(n)\n" }
        }
        return out
    }
}

extension ScenarioResult {
    /// `fidelity: 2,920 recorded outcomes checked, 0 divergences`, or `fidelity: nothing to check ...`.
    public var fidelityLine: String {
        let n = checked ?? 0
        let d = divergenceCount ?? divergences.count
        if n == 0 {
            return
                "fidelity: nothing to check (the trace records no translation, fault, guest fault line, probe failure or IOVA allocation of a translated device); not a pass"
        }
        return
            "fidelity: \(grouped(n)) recorded outcome\(n == 1 ? "" : "s") checked, \(grouped(d)) divergence\(d == 1 ? "" : "s")"
    }
}

/// `2920` -> `2,920`.
func grouped(_ n: Int) -> String {
    let s = String(n)
    var out = ""
    for (i, c) in s.enumerated() {
        if i > 0 && (s.count - i) % 3 == 0 && c != "-" { out += "," }
        out.append(c)
    }
    return out
}

extension Occurrence {
    /// `event 123 (file:line) device address 0x..., buffer 0x..., 4096 bytes, read`.
    public var text: String {
        var s = "event \(eventIndex)"
        if let f = sourceFile, let p = sourcePosition { s += " (\(f):\(p))" }
        s += ", device address \(Hex.prefixed(deviceAddress))"
        if let b = bufferAddress { s += ", buffer \(Hex.prefixed(b))" }
        s += ", \(size) bytes, \(write ? "write" : "read")"
        if let r = reason { s += ", reason \(Hex.prefixed(r))" }
        return s
    }
}
