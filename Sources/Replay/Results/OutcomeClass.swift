/// What a scenario predicts for one device access or one device (docs/replay.md, "Outcomes"). Raw values are the stable
/// names used in reports, fingerprints and schemas.
public enum OutcomeClass: String, Sendable, Codable, CaseIterable, Comparable {
    /// The access reached the intended buffer.
    case ok
    /// The vIOMMU blocked the access and recorded a fault (reason in the occurrence).
    case fault
    /// The device touched a different GPA than the buffer: silent corruption.
    case misdirected
    /// The access succeeded only through a lazily-unmapped IOTLB entry.
    case stale
    /// Works, but the platform claims isolation that the device bypasses.
    case untranslatedWhileClaimed = "untranslated-while-claimed"
    /// The driver failed to probe the device (features refused, restricted-memory refusal).
    case probeFailed = "probe-failed"
    /// The kernel does not see or claim the device at all.
    case invisible
    /// The DMA API returned a mapping error.
    case mappingFailed = "mapping-failed"
    /// A kernel oops predicted by an opt-in, unverified hypothesis.
    case oopsHypothesis = "oops-hypothesis"
    /// A kernel oops or panic the kernel's code shows for this path (the model's `oopses`).
    case oops

    /// Severity order for "worst": higher is worse.
    public var severity: Int {
        switch self {
        case .ok: 0
        case .untranslatedWhileClaimed: 1
        case .stale: 2
        case .fault: 3
        case .mappingFailed: 4
        case .invisible: 5
        case .probeFailed: 6
        case .misdirected: 7
        case .oopsHypothesis: 8
        case .oops: 9
        }
    }

    /// True for the classes that mean the device does not work as intended.
    public var isFailure: Bool { self != .ok && self != .untranslatedWhileClaimed }

    public static func < (a: OutcomeClass, b: OutcomeClass) -> Bool { a.rawValue < b.rawValue }
}
