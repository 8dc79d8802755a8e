import TraceFormat
import Analysis
import Replay

/// The output formats of every reporting command (`--format`).
public enum ReportFormat: String, Sendable, CaseIterable {
    case text, json, junit, sarif, markdown, html

    /// The renderer for this format. `colour` only affects text (the CLI passes true on a terminal), and so does
    /// `showUnchanged` (diff reports list only what changed unless it is set).
    public func renderer(colour: Bool = false, showUnchanged: Bool = false) -> any ReportRenderer {
        switch self {
        case .text: TextRenderer(colour: colour, showUnchanged: showUnchanged)
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
        for c in matrix?.cells ?? [] {
            set.insert(CaseKey(trace: c.trace, scenario: "\(c.kernel)@\(c.mode)", device: c.device))
        }
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

/// Where an occurrence came from, for people: `file:line (event #n, t=ns)`.
func describe(_ o: Occurrence) -> String {
    var s = ""
    if let file = o.sourceFile {
        s += file
        if let p = o.sourcePosition { s += ":\(p)" }
        s += " "
    }
    s += "(event #\(o.eventIndex), t=\(o.timestamp) ns) addr \(Hex.prefixed(o.deviceAddress, width: 16)) size \(o.size)"
    if let b = o.bufferAddress { s += " buffer \(Hex.prefixed(b, width: 16))" }
    if let r = o.reason { s += " reason " + Hex.prefixed(r, width: 2) }
    return s
}

/// Escapes text for XML/HTML element content and attribute values; control characters and bidi overrides
/// first become visible escapes (``TextSafety``; newline, tab and carriage return are kept, XML allows them).
func xmlEscape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    let safe =
        TextSafety.needsEscaping(s)
        ? String(
            s.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                String(
                    line.split(separator: "\t", omittingEmptySubsequences: false).map { TextSafety.escaped(String($0)) }
                        .joined(separator: "\t"))
            }.joined(separator: "\n"))
        : s
    for ch in safe.unicodeScalars {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        default:
            // XML 1.0 forbids most control characters, even escaped.
            if ch.value < 0x20 && ch != "\n" && ch != "\t" && ch != "\r" {
                out += "\u{FFFD}"
            } else {
                out.unicodeScalars.append(ch)
            }
        }
    }
    return out
}
