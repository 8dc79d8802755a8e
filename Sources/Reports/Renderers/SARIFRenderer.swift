import Analysis
import Replay
import TraceFormat

/// SARIF 2.1.0 (OASIS), for code-scanning uploads. One run; one result per finding, at most
/// ``maxResults`` (GitHub's limit per run), most severe first; each with a stable
/// `partialFingerprints["dmatraceFinding/v1"]` and a location at the capture file and line (or byte offset
/// for binary inputs). A compressed input (`.zst`, `.gz`, `.xz`) is named as the file, without a region GitHub
/// could not show, plus a logical location `FILE:LINE`. Every rule has a short and a full description and help
/// saying what to do. Diff reports set `baselineState` and leave fixed findings out (GitHub ignores
/// `baselineState`: an "absent" result would be shown as an open alert).
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
        var help: Message
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
        var logicalLocations: [Logical]?
        var message: Message?
    }
    struct Logical: Encodable {
        var fullyQualifiedName: String
        var kind: String
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
        let reported = r.findings.filter { r.diff?.status(of: $0.fingerprint) != .fixed }
        let ordered = reported.enumerated().sorted { a, b in
            let fa = r.isFailing(a.element), fb = r.isFailing(b.element)
            if fa != fb { return fa }
            if a.element.severity != b.element.severity { return a.element.severity > b.element.severity }
            return a.offset < b.offset
        }.map(\.element)
        let kept = Array(ordered.prefix(maxResults)).sorted(by: Finding.reportOrder)
        var ruleIndex: [String: Int] = [:]
        var rules: [Rule] = []
        for f in kept.sorted(by: { $0.ruleID < $1.ruleID }) where ruleIndex[f.ruleID] == nil {
            ruleIndex[f.ruleID] = rules.count
            rules.append(
                Rule(
                    id: f.ruleID, name: f.ruleID.split(separator: "/").last.map(String.init) ?? f.ruleID,
                    shortDescription: Message(text: shortDescription(f)),
                    fullDescription: Message(text: Self.fullDescription(f)),
                    help: Message(text: Self.help(f)),
                    defaultConfiguration: Configuration(level: Self.level(f.severity))))
        }
        let traceByName = Dictionary(r.traces.map { ($0.name, $0.path) }, uniquingKeysWith: { a, _ in a })
        let results = kept.map { f -> Result in
            var locations: [Location] = []
            for (label, o) in [("first occurrence", f.first), ("worst occurrence", f.worst)] {
                guard let o else { continue }
                if let file = o.sourceFile {
                    var region: Region?
                    var logical: [Logical]?
                    if let p = o.sourcePosition, p > 0, p <= UInt64(Int.max) {
                        let unit = byteInputs.contains(file) ? "byte" : "line"
                        if Self.isCompressed(file) {
                            logical = [Logical(fullyQualifiedName: "\(file):\(p)", kind: "resource")]
                        } else {
                            region =
                                unit == "byte"
                                ? Region(startLine: nil, byteOffset: Int(p))
                                : Region(startLine: Int(p), byteOffset: nil)
                        }
                    }
                    let at =
                        Self.isCompressed(file)
                        ? (o.sourcePosition.map {
                            " (\(file) \(byteInputs.contains(file) ? "byte" : "line") \($0) after decompression)"
                        } ?? "") : ""
                    locations.append(
                        Location(
                            physicalLocation: Physical(
                                artifactLocation: Artifact(uri: uriEncode(file)), region: region),
                            logicalLocations: logical, message: Message(text: "\(label): event #\(o.eventIndex)\(at)")))
                }
            }
            if locations.isEmpty {
                locations.append(
                    Location(
                        physicalLocation: Physical(
                            artifactLocation: Artifact(uri: uriEncode(traceByName[f.trace] ?? f.trace)), region: nil),
                        logicalLocations: nil, message: nil))
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
        if kept.count < reported.count {
            notes = [
                Notification(
                    level: "warning",
                    message: Message(
                        text:
                            "\(reported.count - kept.count) of \(reported.count) findings left out: at most \(maxResults) results per SARIF run"
                    ))
            ]
        }
        let run = Run(
            tool: Tool(
                driver: Driver(name: "dmatrace", version: r.tool.version, semanticVersion: r.tool.version, rules: rules)
            ),
            automationDetails: Automation(id: "dmatrace/\(r.command)/"),
            invocations: [Invocation(executionSuccessful: true, toolExecutionNotifications: notes)],
            results: results,
            properties: [
                "findingsTotal": r.findings.count, "findingsReported": kept.count,
                "findingsFixedLeftOut": r.findings.count - reported.count
            ])
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

    static func isCompressed(_ path: String) -> Bool {
        path.hasSuffix(".zst") || path.hasSuffix(".gz") || path.hasSuffix(".xz") || path.hasSuffix(".bz2")
    }

    /// What the rule checks, in full: the finding's rule (models and sources behind it) for replay findings.
    static func fullDescription(_ f: Finding) -> String {
        switch f.origin {
        case .replay:
            "Replaying the recording under a kernel model and a QEMU mode predicts '\(f.category)' for a device. \(f.explanation)"
        case .dmaDebug:
            "The offline CONFIG_DMA_API_DEBUG check '\(f.key)' (kernel/dma/debug.c) found the driver breaking a DMA-API rule. \(f.explanation)"
        case .fidelity:
            "Replaying the scenario the trace was recorded under does not reproduce what was recorded. \(f.explanation)"
        case .guestLog:
            "The recorded guest kernel log reports '\(f.category)' by itself, whatever the scenario. \(f.explanation)"
        }
    }

    /// What to do about a finding of this kind.
    static func help(_ f: Finding) -> String {
        switch (f.origin, f.category) {
        case (.replay, "probe-failed"):
            "This kernel cannot drive the device under this QEMU mode (for example it cannot acknowledge VIRTIO_F_ACCESS_PLATFORM, so QEMU refuses FEATURES_OK). Use a mode in which the matrix answer says every kernel works, create the device another way (disable-legacy, iommu_platform), or move the guest to a kernel that can."
        case (.replay, "fault"):
            "The device's DMA hits an address its IOMMU domain does not map. Check that the driver maps every buffer through the DMA API before the device uses it and never after the unmap; for stray DMA, find what programmed the device with that address."
        case (.replay, "misdirected"):
            "The device reaches other guest memory than the buffer: silent corruption. The driver hands the device addresses (GPA or IOVA) that the device's address space does not translate as the driver assumes; use a mode and device configuration in which the driver's DMA-API use matches the translation."
        case (.replay, "stale"):
            "The device used a buffer after its unmap, through an IOTLB entry that lazy invalidation left valid. Fix the driver's unmap ordering; iommu.strict=1 turns this into a fault you can see."
        case (.replay, "untranslated-while-claimed"):
            "The device's DMA bypasses an IOMMU that the firmware table and the guest believe translates it: a guest-side vfio, DPDK or nested VM on this device corrupts memory silently. Give the device iommu_platform=on (modern-only), or put it on a bypass_iommu bus that the firmware table declares."
        case (.replay, "mapping-failed"):
            "The DMA API cannot map for this device under this kernel and mode (for example a device outside every DRHD with one global intel dma_ops, before 5.8). Put the device in the IOMMU's scope or use a kernel with per-device dma_ops."
        case (.replay, "invisible"):
            "The kernel never probes the device (for example a legacy-only virtio driver and a modern-only device). Create the device transitional (disable-legacy=off) or use a newer guest kernel."
        case (.replay, let c) where c.hasPrefix("oops"):
            "The kernel model predicts an oops on this path (function and release range in the rule). Avoid this kernel and mode combination, or use a release with the fix."
        case (.dmaDebug, _):
            "Fix the driver's DMA-API calls: every mapping unmapped once, with the same size, direction and function, error-checked with dma_mapping_error(), synced only inside the mapping (the kernel's Documentation/core-api/dma-api-howto.rst)."
        case (.guestLog, "swiotlb-full"):
            "The swiotlb bounce pool ran out: the device's DMA failed or was retried. Enlarge it (swiotlb=N slabs on the guest command line), reduce the mapping sizes, or give the device an IOMMU so it need not bounce."
        case (.guestLog, _):
            "The guest kernel printed this failure itself: see the quoted log lines and the rule for what it means."
        case (.fidelity, _):
            "The models do not reproduce this recording: either a model is wrong for this kernel or QEMU version, or the capture's metadata is. Keep the trace and report it; predictions for other scenarios from this trace are suspect until it is explained."
        default:
            "See the finding's explanation and rule: they name the kernel and QEMU behaviour and its source."
        }
    }

    /// Percent-encodes what may not appear raw in a URI reference (spaces, `%`, `#`, `?`, non-ASCII).
    private func uriEncode(_ path: String) -> String {
        var out = ""
        for b in path.utf8 {
            let c = Character(Unicode.Scalar(b))
            if b > 0x20 && b < 0x7f && !"%#?[]\"<>\\^`{|}".contains(c) {
                out.append(c)
            } else {
                out += "%" + Hex.digits(b, width: 2, uppercase: true)
            }
        }
        return out
    }
}
