import Analysis
import Replay

/// The output formats of every reporting command (`--format`).
public enum ReportFormat: String, Sendable, CaseIterable {
    case text, json, junit, sarif, markdown, html

    /// The renderer for this format. `colour` only affects text (the CLI passes true on a terminal).
    public func renderer(colour: Bool = false) -> any ReportRenderer {
        switch self {
        case .text: TextRenderer(colour: colour)
        case .json: JSONRenderer()
        case .junit: JUnitRenderer()
        case .sarif: SARIFRenderer()
        case .markdown: MarkdownRenderer()
        case .html: HTMLRenderer()
        }
    }
}

/// Renders a ``Report`` into one output format. Renderers are pure: same report, same bytes.
public protocol ReportRenderer: Sendable {
    /// The format produced.
    var format: ReportFormat { get }
    /// The rendered document.
    func render(_ report: Report) throws -> String
}

/// The report as JSON (the form `schemas/report.schema.json` describes and `dmatrace diff` reads).
public struct JSONRenderer: ReportRenderer {
    public init() {}
    public var format: ReportFormat { .json }
    public func render(_ report: Report) throws -> String { try ReportJSON.string(report) }
}

// MARK: - Shared helpers

extension Finding {
    /// A stable rule id for CI systems: `replay/<class>`, `dma-api-debug/<check>`, `replay-fidelity` or `guest-log/<class>`.
    public var ruleID: String {
        switch origin {
        case .replay: "replay/\(category)"
        case .dmaDebug: "dma-api-debug/\(key)"
        case .fidelity: "replay-fidelity"
        case .guestLog: "guest-log/\(category)"
        }
    }
}

/// One (trace, scenario, device) triple: a JUnit testcase, a row of the text and Markdown summaries.
struct CaseKey: Hashable, Comparable {
    var trace: String
    var scenario: String
    var device: String

    static func < (a: CaseKey, b: CaseKey) -> Bool {
        (a.trace, a.scenario, a.device) < (b.trace, b.scenario, b.device)
    }
}

extension Report {
    /// Every (trace, scenario, device): the matrix cells, the findings' triples, and one `recorded` case per
    /// DMA-API debug trace, sorted.
    var cases: [CaseKey] {
        var set = Set<CaseKey>()
        for c in matrix?.cells ?? [] { set.insert(CaseKey(trace: c.trace, scenario: "\(c.kernel)@\(c.mode)", device: c.device)) }
        for f in findings { set.insert(CaseKey(trace: f.trace, scenario: f.scenario, device: f.device)) }
        for d in dmaDebug {
            let name = Fingerprint.traceName(d.trace)
            if !set.contains(where: { $0.trace == name && $0.scenario == "recorded" }) {
                set.insert(CaseKey(trace: name, scenario: "recorded", device: "-"))
            }
        }
        return set.sorted()
    }

    /// Findings of one case.
    func findings(of c: CaseKey) -> [Finding] {
        findings.filter { $0.trace == c.trace && $0.scenario == c.scenario && $0.device == c.device }
    }

    /// Change status label for a finding in diff reports.
    func changeLabel(_ f: Finding) -> String? { diff?.status(of: f.fingerprint)?.rawValue }
}

/// `0x%016llx`.
func hex64(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 16 - s.count)) + s
}

/// Where an occurrence came from, for people: `file:line (event #n, t=ns)`.
func describe(_ o: Occurrence) -> String {
    var s = ""
    if let file = o.sourceFile {
        s += file
        if let p = o.sourcePosition { s += ":\(p)" }
        s += " "
    }
    s += "(event #\(o.eventIndex), t=\(o.timestamp) ns) addr \(hex64(o.deviceAddress)) size \(o.size)"
    if let b = o.bufferAddress { s += " buffer \(hex64(b))" }
    if let r = o.reason { s += " reason 0x" + (r < 16 ? "0" : "") + String(r, radix: 16) }
    return s
}

/// Escapes text for XML/HTML element content and attribute values.
func xmlEscape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for ch in s.unicodeScalars {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        default:
            // XML 1.0 forbids most control characters, even escaped.
            if ch.value < 0x20 && ch != "\n" && ch != "\t" && ch != "\r" { out += "\u{FFFD}" } else { out.unicodeScalars.append(ch) }
        }
    }
    return out
}
