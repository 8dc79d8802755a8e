/// What an importer understood: per-event-name counts, skipped and unknown lines, lost events, and the first
/// malformed lines with their location, for the ingest summary.
public struct IngestDiagnostics: Sendable, Equatable {
    /// One problem with a location a person can open.
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        /// Input path.
        public var file: String
        /// 1-based line (text inputs) or byte offset (binary inputs).
        public var position: UInt64
        /// True when ``position`` is a byte offset.
        public var isByteOffset: Bool
        /// What is wrong, in words.
        public var message: String

        public init(file: String, position: UInt64, isByteOffset: Bool = false, message: String) {
            self.file = file
            self.position = position
            self.isByteOffset = isByteOffset
            self.message = message
        }

        public var description: String {
            isByteOffset ? "\(file): byte \(position): \(message)" : "\(file):\(position): \(message)"
        }
    }

    /// Lines or records that became events, per source event name (`dma_map_page`, `vtd_dmar_fault`, ...).
    public var understood: [String: Int] = [:]
    /// Recognised event names that the importer deliberately does not turn into events, with counts.
    public var ignored: [String: Int] = [:]
    /// Event names the importer does not know, with counts.
    public var unknown: [String: Int] = [:]
    /// Records whose text was spread over several lines and joined back, per kind of join
    /// (`printk continuation`, `wrapped line`), with counts: said in the summary so a reader knows.
    public var joined: [String: Int] = [:]
    /// Malformed lines or records that were skipped.
    public var skipped: Int = 0
    /// Comment and header lines.
    public var comments: Int = 0
    /// Events the input says it lost (ftrace `[LOST n EVENTS]`, ring-buffer missed events).
    public var lostEvents: Int = 0
    /// The first problems (bounded by ``maxProblems``), in input order.
    public var problems: [Problem] = []
    /// Problems beyond ``maxProblems`` are counted, not stored.
    public var problemsNotStored: Int = 0
    /// How many problems are kept verbatim.
    public var maxProblems = 100

    public init() {}

    /// Total events produced.
    public var totalUnderstood: Int { understood.values.reduce(0, +) }

    /// Records one malformed line or record and counts it as skipped.
    public mutating func skip(_ problem: Problem) {
        skipped += 1
        if problems.count < maxProblems { problems.append(problem) } else { problemsNotStored += 1 }
    }

    /// Counts `n` lost events, saturating at `Int.max`: the count comes from the input (a ring buffer's
    /// missed-events field, QEMU's dropped record), which may claim anything (found by fuzzing simpletrace).
    public mutating func addLost(_ n: some BinaryInteger) {
        let (sum, overflow) = lostEvents.addingReportingOverflow(Int(clamping: n))
        lostEvents = overflow ? Int.max : sum
    }

    /// Adds another importer's counts into this one.
    public mutating func merge(_ other: IngestDiagnostics) {
        understood.merge(other.understood, uniquingKeysWith: +)
        ignored.merge(other.ignored, uniquingKeysWith: +)
        unknown.merge(other.unknown, uniquingKeysWith: +)
        joined.merge(other.joined, uniquingKeysWith: +)
        skipped += other.skipped
        comments += other.comments
        addLost(other.lostEvents)
        for p in other.problems {
            if problems.count < maxProblems { problems.append(p) } else { problemsNotStored += 1 }
        }
        problemsNotStored += other.problemsNotStored
    }
}
