import Analysis
import TraceFormat

/// The answer first, as text: the answer line and its unsafe alternative, then per trace a kernel × mode grid
/// with one symbol per cell, the legend, what blocks which modes, and what a device property would change.
/// Used by `dmatrace matrix` (default output) and at the head of the text report.
public enum AnswerText {
    /// Short column labels: the kernel id without `linux-` up to its first `-` (`4.8-platform` → `4.8`), the whole
    /// id when two would collide.
    static func labels(_ kernels: [String]) -> [String] {
        let short = kernels.map { k -> String in
            let base = k.hasPrefix("linux-") ? String(k.dropFirst(6)) : k
            return base.split(separator: "-").first.map(String.init) ?? base
        }
        return short.enumerated().map { i, s in short.filter { $0 == s }.count > 1 ? kernels[i] : s }
    }

    /// Renders `a`; `colour` adds ANSI colours (terminals only). Every trace-derived string is escaped with
    /// `escape` (the caller's terminal policy).
    public static func render(_ answer: MatrixAnswer, colour: Bool = false, maxListed: Int = 4) -> String {
        let a = escaped(answer)
        func paint(_ s: String, _ sym: MatrixAnswer.Symbol) -> String {
            guard colour else { return s }
            let code =
                sym == .isolated
                ? "32" : sym == .unisolated ? "36" : sym == .bypassesClaimedIOMMU ? "33" : sym == .notRun ? "2" : "31"
            return "\u{1B}[\(code)m\(s)\u{1B}[0m"
        }
        func list(_ xs: [String]) -> String {
            xs.count <= maxListed
                ? xs.joined(separator: ", ")
                : xs.prefix(maxListed).joined(separator: ", ") + " and \(xs.count - maxListed) more"
        }
        let collapse = MatrixAnswer.collapse
        var out = "answer: \(a.headline)\n"
        let working = collapse(a.workingForEveryKernel.map(\.mode)).filter { !a.isolatedForEveryKernel.contains($0) }
        for w in a.workingForEveryKernel where working.contains(w.mode) {
            out += "  \(w.mode): " + (w.costs.isEmpty ? "no cost" : w.costs.joined(separator: "; ")) + "\n"
        }
        if !a.unsafeForEveryKernel.isEmpty {
            out +=
                "unsafe alternative (every kernel runs, but DMA bypasses an IOMMU the guest trusts: a guest vfio, DPDK or "
                + "nested VM on such a device corrupts memory silently): "
                + collapse(a.unsafeForEveryKernel.map(\.mode)).joined(separator: ", ") + "\n"
        }
        let labels = labels(a.kernels)
        var widths = labels.map { max($0.count, 3) }
        // An era's name spans its columns: widen its last column when the name is longer.
        for era in a.eras {
            let cols = era.kernels.compactMap { a.kernels.firstIndex(of: $0) }
            guard let last = cols.max() else { continue }
            let span = cols.reduce(0) { $0 + widths[$1] + 2 } - 2
            if era.name.count + 1 > span { widths[last] += era.name.count + 1 - span }
        }
        func shown(_ rows: [MatrixAnswer.Row]) -> [String] {
            rows.enumerated().map { i, r in
                // A variant sits under its base mode's row; without that row it is named in full.
                r.variant.map { i > 0 && rows[i - 1].base == r.base ? "  +\($0)" : r.mode } ?? r.mode
            }
        }
        let modeWidth = max(4, a.grids.flatMap { shown($0.rows) }.map(\.count).max() ?? 0)
        for g in a.grids {
            out += "\ntrace \(g.trace)\n"
            // Era header above the first column of each era.
            var eraLine = ""
            var start = modeWidth
            for (i, k) in a.kernels.enumerated() {
                if let era = a.eras.first(where: { $0.kernels.first == k }) {
                    eraLine = eraLine.padded(to: start + 2) + era.name + " "
                }
                start += 2 + widths[i]
            }
            out += eraLine.trimmingTrailingSpaces() + "\n"
            var header = "mode".padded(to: modeWidth)
            for (i, l) in labels.enumerated() { header += "  " + l.padded(to: widths[i]) }
            out += header.trimmingTrailingSpaces() + "\n"
            for (r, name) in zip(g.rows, shown(g.rows)) {
                var line = name.padded(to: modeWidth)
                for (i, s) in r.cells.enumerated() {
                    line +=
                        "  " + paint(s.glyph, s)
                        + (i == r.cells.count - 1 ? "" : String(repeating: " ", count: widths[i] - 1))
                }
                out += line + "\n"
            }
        }
        let used = Set(a.grids.flatMap { $0.rows.flatMap(\.cells) })
        out +=
            "\n"
            + MatrixAnswer.Symbol.allCases.filter(used.contains).map { "\($0.glyph) \($0.meaning)" }.joined(
                separator: " · ") + "\n"
        out +=
            "kernels: " + zip(labels, a.kernels).filter { $0 != $1 }.map { "\($0) = \($1)" }.joined(separator: ", ")
            + "\n"
        if !a.offAxis.isEmpty {
            out += "not on the axis: " + a.offAxis.map { "\($0.kernel) (\($0.why))" }.joined(separator: "; ") + "\n"
        }
        if !a.blockers.isEmpty {
            out += "\nwhy:\n"
            for b in a.blockers {
                out +=
                    "  \(b.kernel): \(b.failure.meaning) (\(b.devices.joined(separator: ", "))) under \(list(collapse(b.modes)))"
                if let e = b.example { out += ": \"\(e)\"" }
                out += "\n"
            }
        }
        if !a.hints.isEmpty {
            out += "\ndevice properties:\n"
            for h in a.hints { out += "  \(h)\n" }
        }
        return out
    }
}

extension AnswerText {
    /// `a` with every string that can come from a trace or a model file escaped for a terminal (control and
    /// bidirectional characters made visible, ``TextSafety``), so widths are computed on what is printed.
    static func escaped(_ a: MatrixAnswer) -> MatrixAnswer {
        let e = TextSafety.escaped
        var a = a
        a.kernels = a.kernels.map(e)
        a.eras = a.eras.map { .init(name: e($0.name), kernels: $0.kernels.map(e)) }
        a.offAxis = a.offAxis.map { .init(kernel: e($0.kernel), why: e($0.why)) }
        a.grids = a.grids.map { g in
            .init(
                trace: e(g.trace),
                rows: g.rows.map {
                    .init(mode: e($0.mode), base: e($0.base), variant: $0.variant.map(e), cells: $0.cells)
                })
        }
        a.isolatedForEveryKernel = a.isolatedForEveryKernel.map(e)
        a.workingForEveryKernel = a.workingForEveryKernel.map { .init(mode: e($0.mode), costs: $0.costs.map(e)) }
        a.unsafeForEveryKernel = a.unsafeForEveryKernel.map { .init(mode: e($0.mode), costs: $0.costs.map(e)) }
        a.blockers = a.blockers.map {
            .init(
                kernel: e($0.kernel), failure: $0.failure, devices: $0.devices.map(e), modes: $0.modes.map(e),
                example: $0.example.map(e))
        }
        a.hints = a.hints.map(e)
        a.headline = e(a.headline)
        a.divergedTraces = a.divergedTraces.map(e)
        return a
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}
