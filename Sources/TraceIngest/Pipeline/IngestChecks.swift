import TraceFormat

/// An ingest whose result must not be trusted: `dmatrace ingest` refuses it (exit 2) and writes nothing,
/// unless `--allow-empty` (the first two) or `--force-merge` (the last) is given.
public enum IngestRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    /// A non-empty input of which nothing at all was recognised (no event, no fact): the wrong `--format`,
    /// or not a capture.
    case nothingUnderstood(path: String, format: String, bytes: UInt64, seen: String)
    /// The inputs together gave no event: the trace would be empty and every replay of it would "work".
    case noEvents(paths: [String], seen: String)
    /// Guest and host inputs that do not look like one run (``IngestReport/mismatchEvidence()``).
    case mismatchedRun(guest: [String], host: [String], evidence: String)

    public var description: String {
        switch self {
        case .nothingUnderstood(let path, let format, let bytes, let seen):
            "\(path): nothing understood as \(format) in \(bytes) bytes: \(seen) (check --input-format; --allow-empty accepts it)"
        case .noEvents(let paths, let seen):
            "\(paths.joined(separator: ", ")): no events: \(seen) (--allow-empty writes the empty trace anyway)"
        case .mismatchedRun(let guest, let host, let evidence):
            "\(guest.joined(separator: ", ")) and \(host.joined(separator: ", ")) do not look like one run: \(evidence) "
                + "(--force-merge merges them anyway)"
        }
    }
}

extension IngestReport {
    /// Below this many guest iommu events the merge is not judged (too few to tell).
    public static let minGuestEventsJudged = 20
    /// The share of guest iommu events that must be attributed to a device.
    public static let minAttributedShare = 0.5
    /// Host/guest pairs the alignment needs, as a share of the guest iommu events (and at least 3). The real
    /// captures pair 0.37–0.41 of them.
    public static let minPairShare = 0.02

    /// What was seen in one input, in words: the lines that were comments, malformed or unknown events.
    static func seen(_ d: IngestDiagnostics) -> String {
        var parts = ["\(d.comments) comment/other line(s)", "\(d.skipped) malformed"]
        if let p = d.problems.first { parts[1] += " (first: \(p))" }
        let unknown = d.unknown.values.reduce(0, +)
        var u = "\(unknown) unknown event(s)"
        if unknown > 0 {
            let names = d.unknown.keys.sorted().prefix(5).map { TextSafety.clip($0, to: 80) }
            u += " (\(names.joined(separator: ", "))\(d.unknown.count > 5 ? ", …" : ""))"
        }
        parts.append(u)
        return parts.joined(separator: ", ")
    }

    /// The first reason to refuse the result as empty: a non-empty input of which nothing was recognised,
    /// or no event from all inputs together; nil when there are events.
    public func emptiness(events: UInt64) -> IngestRefusal? {
        for i in inputs where i.bytes > 0 {
            let d = i.diagnostics
            // An input made only of comments (a header without events) is an empty capture, not a wrong
            // format: the no-events rule below judges it with the other inputs.
            if d.totalUnderstood == 0 && d.ignored.isEmpty && d.lostEvents == 0 && (d.skipped > 0 || !d.unknown.isEmpty)
            {
                return .nothingUnderstood(path: i.path, format: i.format, bytes: i.bytes, seen: Self.seen(d))
            }
        }
        guard events == 0, inputs.contains(where: { $0.bytes > 0 }) else { return nil }
        let seen = inputs.map { i -> String in
            let names = i.diagnostics.ignored.keys.sorted().prefix(5).map { TextSafety.clip($0, to: 80) }
            return "\(i.path) (\(i.format), \(i.bytes) bytes): no DMA event; recognised but not DMA: "
                + (names.isEmpty ? "nothing" : names.joined(separator: ", ")) + "; " + Self.seen(i.diagnostics)
        }
        return .noEvents(paths: inputs.map(\.path), seen: seen.joined(separator: "; "))
    }

    /// Why the guest and host inputs do not look like one run, or nil: their vIOMMU kinds contradict each
    /// other; or, unless both sides name the same vIOMMU, (with at least ``minGuestEventsJudged`` guest iommu
    /// events) most guest events stay unattributed or too few host translations pair with guest maps for a
    /// trustworthy clock alignment. When both sides name the same vIOMMU, poor alignment alone is not taken
    /// as another run (a guest ring buffer that overflowed, guest events outside the host log's window, a
    /// kernel whose map events do not pair give it too): ``weakAlignment()`` reports it instead.
    public func mismatchEvidence() -> IngestRefusal? {
        let guest = inputs.filter { $0.clockDomain.hasPrefix("guest") }
        let host = inputs.filter { $0.clockDomain.hasPrefix("host") }
        guard !guest.isEmpty, !host.isEmpty else { return nil }
        var evidence: [String] = []
        let gk = Set(guest.compactMap(\.viommu)), hk = Set(host.compactMap(\.viommu))
        if !gk.isEmpty, !hk.isEmpty, gk.isDisjoint(with: hk) {
            // Supporting evidence; poor alignment alone refuses nothing (real captures of one run can align
            // poorly: weakAlignment() warns).
            evidence += alignmentDoubts()
            func said(_ side: [Input]) -> String {
                side.compactMap { i in i.viommu.map { "\($0) (\(i.path))" } }.joined(separator: ", ")
            }
            evidence.insert("the guest shows \(said(guest)) but the host log \(said(host))", at: 0)
        }
        guard !evidence.isEmpty else { return nil }
        return .mismatchedRun(
            guest: guest.map(\.path), host: host.map(\.path), evidence: evidence.joined(separator: "; "))
    }

    static func kindsAgree(_ guest: Set<String>, _ host: Set<String>) -> Bool {
        !guest.isEmpty && !host.isEmpty && !guest.isDisjoint(with: host)
    }

    /// A warning when the guest and host name the same vIOMMU but the alignment is poor (the doubts that
    /// would refuse inputs whose vIOMMU is not known on both sides); nil otherwise.
    public func weakAlignment() -> String? {
        let gk = Set(inputs.filter { $0.clockDomain.hasPrefix("guest") }.compactMap(\.viommu))
        let hk = Set(inputs.filter { $0.clockDomain.hasPrefix("host") }.compactMap(\.viommu))
        let doubts = alignmentDoubts()
        guard !doubts.isEmpty, gk.isEmpty || hk.isEmpty || !gk.isDisjoint(with: hk) else { return nil }
        return "weak guest/host alignment (are these inputs of one run?): "
            + doubts.joined(separator: "; ") + "; device attribution of guest iommu events is incomplete"
    }

    /// Poor attribution or too few pairs, in words.
    func alignmentDoubts() -> [String] {
        var evidence: [String] = []
        if let a = alignment {
            let total = a.attributedEvents + a.unattributedEvents
            if total >= Self.minGuestEventsJudged {
                if Double(a.attributedEvents) < Self.minAttributedShare * Double(total) {
                    evidence.append(
                        "\(a.unattributedEvents) of \(total) guest iommu events could not be attributed to a device")
                }
                let needed = max(3, Int((Self.minPairShare * Double(total)).rounded(.up)))
                if a.pairsMatched < needed {
                    evidence.append(
                        "only \(a.pairsMatched) guest maps pair with host translations (\(needed) needed for \(total) guest iommu events; alignment \(a.method))"
                    )
                }
            }
        }
        return evidence
    }
}

extension IngestReport {
    /// Whether a result of `events` events may be written: the refusal (``emptiness(events:)`` unless
    /// `allowEmpty`, then ``mismatchEvidence()`` unless `forceMerge`), and the warnings to print first
    /// (the overridden mismatch, a weak clock alignment), in order.
    public func verdict(events: UInt64, allowEmpty: Bool, forceMerge: Bool) -> (
        refusal: IngestRefusal?, warnings: [String]
    ) {
        var warnings: [String] = []
        var refusal = allowEmpty ? nil : emptiness(events: events)
        if refusal == nil, let m = mismatchEvidence() {
            if forceMerge { warnings.append("--force-merge: \(m)") } else { refusal = m }
        }
        if refusal == nil, let w = weakAlignment() { warnings.append(w) }
        return (refusal, warnings)
    }
}
