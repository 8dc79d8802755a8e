import Replay

/// How bad a finding is, in the three levels CI systems understand (SARIF `level`, JUnit failure vs pass).
public enum FindingSeverity: String, Sendable, Codable, CaseIterable, Comparable {
    /// Informational (e.g. mappings still live when the capture ended).
    case note
    /// Works, but is wrong or fragile (untranslated-while-claimed, stale IOTLB hits, DMA-API misuse).
    case warning
    /// The device does not work as intended in that scenario.
    case error

    private var rank: Int {
        switch self {
        case .note: 0
        case .warning: 1
        case .error: 2
        }
    }

    public static func < (a: FindingSeverity, b: FindingSeverity) -> Bool { a.rank < b.rank }
}

/// Which analysis produced a finding.
public enum FindingOrigin: String, Sendable, Codable, CaseIterable {
    /// A replay outcome group (kernel model × QEMU mode).
    case replay
    /// The offline CONFIG_DMA_API_DEBUG checks over the recorded stream.
    case dmaDebug = "dma-debug"
    /// A difference between the recorded trace and the replay of its own scenario (docs/replay.md, "Fidelity").
    case fidelity
    /// A failure the recorded guest log reports by itself (swiotlb exhaustion), whatever the scenario.
    case guestLog = "guest-log"
}

/// One actionable finding: all occurrences of one class (and sub-key) for one device in one scenario of one
/// trace, with the first and the worst occurrence pinpointed and the rule that decided it.
///
/// ``fingerprint`` depends only on (trace name, scenario, device, class, key, rule), never on timestamps,
/// event indices or counts, so the same problem keeps its fingerprint across re-ingestion and reruns.
public struct Finding: Sendable, Codable, Equatable {
    /// Stable identity of the finding (16 lower-case hex digits, see ``Fingerprint``).
    public var fingerprint: String
    /// Trace name: the capture's file name without directories and extension (see ``Fingerprint/traceName(_:)``).
    public var trace: String
    /// Scenario id, `kernel@mode` for replay findings, `recorded` for DMA-API debug and fidelity findings.
    public var scenario: String
    /// Kernel model id, when the finding belongs to a replay scenario.
    public var kernel: String?
    /// QEMU mode model id, when the finding belongs to a replay scenario.
    public var mode: String?
    /// Device name (`0000:00:02.0`), or `-` when no device is known.
    public var device: String
    /// Class: an ``OutcomeClass`` raw value for replay findings, `dma-api-debug` or `fidelity` otherwise.
    public var category: String
    /// Sub-key that splits a class into distinct findings (`reason=0x06,read`, a DMA-API debug check id).
    public var key: String
    /// Model ids and source citations behind the decision (kernel/QEMU version, file, function).
    public var rule: String
    /// Where the finding came from.
    public var origin: FindingOrigin
    /// How bad it is.
    public var severity: FindingSeverity
    /// Number of occurrences.
    public var count: Int
    /// First occurrence in trace order.
    public var first: Occurrence?
    /// Worst occurrence (largest size, then earliest), when different from the first.
    public var worst: Occurrence?
    /// One-line summary for people (also the SARIF message and JUnit failure message).
    public var message: String
    /// The rule and its source in words.
    public var explanation: String
    /// The lines the guest kernel would print, in that kernel's era format.
    public var guestLog: [String]
    /// The lines QEMU would print or trace.
    public var hostLog: [String]

    public init(
        trace: String, scenario: String, kernel: String? = nil, mode: String? = nil, device: String,
        category: String, key: String, rule: String, origin: FindingOrigin, severity: FindingSeverity,
        count: Int, first: Occurrence?, worst: Occurrence?, message: String, explanation: String,
        guestLog: [String], hostLog: [String]
    ) {
        self.fingerprint = Fingerprint.of(
            trace: trace, scenario: scenario, device: device, category: category, key: key, rule: rule)
        self.trace = trace
        self.scenario = scenario
        self.kernel = kernel
        self.mode = mode
        self.device = device
        self.category = category
        self.key = key
        self.rule = rule
        self.origin = origin
        self.severity = severity
        self.count = count
        self.first = first
        self.worst = worst
        self.message = message
        self.explanation = explanation
        self.guestLog = guestLog
        self.hostLog = hostLog
    }

    /// The deterministic order of findings in every report: trace, scenario, device, class, key.
    public static func reportOrder(_ a: Finding, _ b: Finding) -> Bool {
        (a.trace, a.scenario, a.device, a.category, a.key, a.fingerprint)
            < (b.trace, b.scenario, b.device, b.category, b.key, b.fingerprint)
    }
}

/// Turns replay results into findings.
public enum Findings {
    /// The severity of a replay outcome class.
    public static func severity(of outcome: OutcomeClass) -> FindingSeverity {
        switch outcome {
        case .ok: .note
        case .untranslatedWhileClaimed, .stale: .warning
        case .fault, .misdirected, .probeFailed, .invisible, .mappingFailed, .oopsHypothesis, .oops: .error
        }
    }

    /// One finding per (scenario, device, outcome group) with a non-`ok` class, plus one per fidelity
    /// divergence of the recorded scenario. Sorted in ``Finding/reportOrder(_:_:)``.
    public static func from(_ result: ReplayResult) -> [Finding] {
        let trace = Fingerprint.traceName(result.trace)
        var out: [Finding] = []
        for scenario in result.scenarios {
            for device in scenario.devices {
                for group in device.groups where group.outcome != .ok {
                    let plain = group.key.isEmpty || group.key == group.outcome.rawValue
                    let what = plain ? group.outcome.rawValue : "\(group.outcome.rawValue) (\(group.key))"
                    let times = group.count == 1 ? "1 time" : "\(group.count) times"
                    // Stray DMA (no buffer mapped at the address) is a device bug present in the recording under
                    // every scenario: reported, but as a warning, since it does not decide whether the
                    // kernel × mode combination works (the replay leaves it out of the device verdict too).
                    out.append(
                        Finding(
                            trace: trace, scenario: scenario.id, kernel: scenario.kernel, mode: scenario.mode,
                            device: device.device, category: group.outcome.rawValue, key: group.key, rule: group.rule,
                            origin: .replay,
                            severity: group.stray
                                ? min(.warning, severity(of: group.outcome)) : severity(of: group.outcome),
                            count: group.count, first: group.first, worst: group.worst,
                            message: "\(device.device) under \(scenario.id): \(what), \(times)"
                                + (group.stray
                                    ? " (stray DMA: no buffer was mapped there; in the recording under every scenario)"
                                    : ""),
                            explanation: group.explanation, guestLog: group.guestLog, hostLog: group.hostLog))
                }
            }
            // Divergences are grouped by their text with the numbers taken out (addresses, counts, event
            // numbers), so the key, and with it the fingerprint, stays the same from run to run.
            var groups: [String: [Divergence]] = [:]
            var order: [String] = []
            for d in scenario.divergences {
                let key = "\(d.device ?? "-")\u{0}\(Self.shape(d.what))"
                if groups[key] == nil { order.append(key) }
                groups[key, default: []].append(d)
            }
            for key in order {
                let list = groups[key]!
                let d = list[0]
                let device = d.device ?? "-"
                var worst = list[0]
                for x in list where x.at.size > worst.at.size { worst = x }
                let more = list.count == 1 ? "" : " (and \(list.count - 1) more like it)"
                out.append(
                    Finding(
                        trace: trace, scenario: scenario.id, kernel: scenario.kernel, mode: scenario.mode,
                        device: device, category: "fidelity", key: Self.shape(d.what),
                        rule: "replay-fidelity (docs/replay.md)",
                        origin: .fidelity, severity: .warning, count: list.count, first: d.at,
                        worst: worst.at == d.at ? nil : worst.at,
                        message: "replay of the recorded scenario \(scenario.id) diverges: \(d.what)\(more)",
                        explanation:
                            "The replay of the scenario the trace was recorded under does not reproduce the trace; "
                            + "predictions for other scenarios are less certain.",
                        guestLog: [], hostLog: []))
            }
        }
        return merged(out)
    }

    /// `text` with every number replaced: hex (`0x…`) by `0x#`, decimal runs by `#`.
    public static func shape(_ text: String) -> String {
        var out = ""
        var chars = Array(text.unicodeScalars)[...]
        while let c = chars.first {
            if c == "0", chars.count > 1, chars[chars.startIndex + 1] == "x" {
                chars = chars.dropFirst(2)
                while let h = chars.first, h.properties.isASCIIHexDigit { chars = chars.dropFirst() }
                out += "0x#"
            } else if c.properties.numericType != nil, ("0"..."9").contains(c) {
                while let d = chars.first, ("0"..."9").contains(d) { chars = chars.dropFirst() }
                out += "#"
            } else {
                out.unicodeScalars.append(c)
                chars = chars.dropFirst()
            }
        }
        return out
    }

    /// Merges findings with the same fingerprint (same divergence seen several times) and sorts.
    static func merged(_ findings: [Finding]) -> [Finding] {
        var byPrint: [String: Finding] = [:]
        var order: [String] = []
        for f in findings {
            if var old = byPrint[f.fingerprint] {
                old.count += f.count
                byPrint[f.fingerprint] = old
            } else {
                byPrint[f.fingerprint] = f
                order.append(f.fingerprint)
            }
        }
        return order.compactMap { byPrint[$0] }.sorted(by: Finding.reportOrder)
    }
}
