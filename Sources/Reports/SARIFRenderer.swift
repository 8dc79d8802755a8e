import Analysis
import Replay

/// SARIF 2.1.0 (OASIS), for code-scanning uploads. One run; one result per finding, at most
/// ``maxResults`` (GitHub's limit per run), most severe first; each with a stable
/// `partialFingerprints["dmatraceFinding/v1"]` and a location at the capture file and line (or byte offset
/// for binary inputs). Diff reports set `baselineState`.
public struct SARIFRenderer: ReportRenderer {
    /// Results per run that code-scanning services accept.
    public static let maxResults = 25_000
    public var maxResults: Int
    public init(maxResults: Int = SARIFRenderer.maxResults) { self.maxResults = maxResults }
    public var format: ReportFormat { .sarif }

    struct Log: Encodable {
        var schema = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
        var version = "2.1.0"
        var runs: [Run]
        enum CodingKeys: String, CodingKey { case schema = "$schema", version, runs }
    }
    struct Run: Encodable {
        var tool: Tool
        var automationDetails: Automation
        var invocations: [Invocation]
        var results: [Result]
        var properties: [String: Int]
    }
    struct Automation: Encodable { var id: String }
    struct Tool: Encodable { var driver: Driver }
    struct Driver: Encodable {
        var name: String
        var version: String
        var semanticVersion: String
        var rules: [Rule]
    }
    struct Rule: Encodable {
        var id: String
        var name: String
        var shortDescription: Message
        var fullDescription: Message
        var defaultConfiguration: Configuration
    }
    struct Configuration: Encodable { var level: String }
    struct Message: Encodable { var text: String }
    struct Invocation: Encodable {
        var executionSuccessful: Bool
        var toolExecutionNotifications: [Notification]?
    }
    struct Notification: Encodable {
        var level: String
        var message: Message
    }
    struct Result: Encodable {
        var ruleId: String
        var ruleIndex: Int
        var level: String
        var message: Message
        var locations: [Location]
        var partialFingerprints: [String: String]
        var baselineState: String?
        var properties: Properties
    }
    struct Properties: Encodable {
        var trace: String
        var scenario: String
        var device: String
        var count: Int
        var category: String
        var key: String
        var rule: String
        var guestLog: [String]
        var hostLog: [String]
    }
    struct Location: Encodable {
        var physicalLocation: Physical
        var message: Message?
    }
    struct Physical: Encodable {
        var artifactLocation: Artifact
        var region: Region?
    }
    struct Artifact: Encodable { var uri: String }
    struct Region: Encodable {
        var startLine: Int?
        var byteOffset: Int?
    }

    private static func level(_ s: FindingSeverity) -> String {
        switch s {
        case .error: "error"
        case .warning: "warning"
        case .note: "note"
        }
    }

    public func render(_ r: Report) throws -> String {
        var byteInputs = Set<String>()
        for t in r.traces { for i in t.inputs where i.positionUnit == "byte" { byteInputs.insert(i.path) } }
        // Most severe first, then report order, so truncation drops notes before errors.
        let ordered = r.findings.enumerated().sorted { a, b in
            let fa = r.isFailing(a.element), fb = r.isFailing(b.element)
            if fa != fb { return fa }
            if a.element.severity != b.element.severity { return a.element.severity > b.element.severity }
            return a.offset < b.offset
        }.map(\.element)
        let kept = Array(ordered.prefix(maxResults)).sorted(by: Finding.reportOrder)
        var ruleIndex: [String: Int] = [:]
        var rules: [Rule] = []
        for f in r.findings.sorted(by: { $0.ruleID < $1.ruleID }) where ruleIndex[f.ruleID] == nil {
            ruleIndex[f.ruleID] = rules.count
            rules.append(Rule(
                id: f.ruleID, name: f.ruleID.split(separator: "/").last.map(String.init) ?? f.ruleID,
                shortDescription: Message(text: shortDescription(f)), fullDescription: Message(text: f.rule),
                defaultConfiguration: Configuration(level: Self.level(f.severity))))
        }
        let traceByName = Dictionary(r.traces.map { ($0.name, $0.path) }, uniquingKeysWith: { a, _ in a })
        let results = kept.map { f -> Result in
            var locations: [Location] = []
            for (label, o) in [("first occurrence", f.first), ("worst occurrence", f.worst)] {
                guard let o else { continue }
                if let file = o.sourceFile {
                    var region: Region?
                    if let p = o.sourcePosition, p > 0, p <= UInt64(Int.max) {
                        region = byteInputs.contains(file) ? Region(startLine: nil, byteOffset: Int(p)) : Region(startLine: Int(p), byteOffset: nil)
                    }
                    locations.append(Location(
                        physicalLocation: Physical(artifactLocation: Artifact(uri: uriEncode(file)), region: region),
                        message: Message(text: "\(label): event #\(o.eventIndex)")))
                }
            }
            if locations.isEmpty {
                locations.append(Location(
                    physicalLocation: Physical(artifactLocation: Artifact(uri: uriEncode(traceByName[f.trace] ?? f.trace)), region: nil),
                    message: nil))
            }
            var level = Self.level(f.severity)
            if r.diff != nil && !r.isFailing(f) && f.severity == .error { level = "warning" }
            return Result(
                ruleId: f.ruleID, ruleIndex: ruleIndex[f.ruleID] ?? 0, level: level,
                message: Message(text: "\(f.message). \(f.explanation)"), locations: locations,
                partialFingerprints: ["dmatraceFinding/v1": f.fingerprint],
                baselineState: r.diff?.status(of: f.fingerprint).map(baselineState),
                properties: Properties(
                    trace: f.trace, scenario: f.scenario, device: f.device, count: f.count, category: f.category,
                    key: f.key, rule: f.rule, guestLog: f.guestLog, hostLog: f.hostLog))
        }
        var notes: [Notification]?
        if kept.count < r.findings.count {
            notes = [Notification(level: "warning", message: Message(
                text: "\(r.findings.count - kept.count) of \(r.findings.count) findings left out: at most \(maxResults) results per SARIF run"))]
        }
        let run = Run(
            tool: Tool(driver: Driver(name: "dmatrace", version: r.tool.version, semanticVersion: r.tool.version, rules: rules)),
            automationDetails: Automation(id: "dmatrace/\(r.command)/"),
            invocations: [Invocation(executionSuccessful: true, toolExecutionNotifications: notes)],
            results: results, properties: ["findingsTotal": r.findings.count, "findingsReported": kept.count])
        return try ReportJSON.string(Log(runs: [run]))
    }

    private func baselineState(_ s: ChangeStatus) -> String {
        switch s {
        case .new: "new"
        case .fixed: "absent"
        case .changed: "updated"
        case .unchanged: "unchanged"
        }
    }

    private func shortDescription(_ f: Finding) -> String {
        switch f.origin {
        case .replay: "Replay predicts \(f.category) for a device"
        case .dmaDebug: "CONFIG_DMA_API_DEBUG check \(f.key)"
        case .fidelity: "Replay of the recorded scenario diverges from the trace"
        case .guestLog: "The guest log reports \(f.category)"
        }
    }

    /// Percent-encodes what may not appear raw in a URI reference (spaces, `%`, `#`, `?`, non-ASCII).
    private func uriEncode(_ path: String) -> String {
        var out = ""
        for b in path.utf8 {
            let c = Character(Unicode.Scalar(b))
            if b > 0x20 && b < 0x7f && !"%#?[]\"<>\\^`{|}".contains(c) { out.append(c) } else {
                out += "%" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
