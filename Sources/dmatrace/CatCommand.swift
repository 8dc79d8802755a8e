import ArgumentParser
import TraceFormat

/// `dmatrace cat`: print events as text or JSONL, filtered.
struct CatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cat",
        abstract: "Print a trace's events as text lines or JSONL, optionally filtered by device, kind and time.",
        discussion: """
            Text lines are 'TIMESTAMP KIND DEVICE name=value ... src=FILE:LINE'; --jsonl prints the \
            metadata line and then one JSON object per event (schemas/event.schema.json), which \
            'dmatrace ingest --format jsonl' reads back. Times are nanoseconds, or a number with a unit \
            (ns, us, ms, s). Exit status: 0 ok; 3 the trace is damaged (readable events were printed, \
            damage reported on stderr); 2 not a trace or unreadable; 64 usage error.
            """)

    @Argument(help: "Trace file, or '-' for standard input.")
    var file: String = "-"

    @Flag(help: "Print JSONL instead of text.")
    var jsonl = false

    @Option(name: .customLong("device"), help: "Only events of this device (name or index); repeatable.")
    var devices: [String] = []

    @Option(name: .customLong("kind"), help: "Only events of this kind (e.g. dma_map); repeatable or comma-separated.")
    var kinds: [String] = []

    @Option(help: "Only events at or after this time.")
    var from: String?

    @Option(help: "Only events before this time.")
    var to: String?

    /// Parses `123`, `123ns`, `4.5us`, `10ms`, `1.25s` into nanoseconds.
    static func parseTime(_ s: String) -> UInt64? {
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("ms", 1e6), ("s", 1e9)]
        for (suffix, scale) in units where s.hasSuffix(suffix) {
            guard let v = Double(s.dropLast(suffix.count)), v >= 0, v * scale < 1.8e19 else { return nil }
            return UInt64((v * scale).rounded())
        }
        return UInt64(s)
    }

    func validate() throws {
        if let from, Self.parseTime(from) == nil { throw ValidationError("--from '\(from)' is not a time") }
        if let to, Self.parseTime(to) == nil { throw ValidationError("--to '\(to)' is not a time") }
        for k in kinds.flatMap({ $0.split(separator: ",") }) where EventKind(name: String(k)) == nil {
            throw ValidationError("unknown kind '\(k)'; known: \(EventKind.allCases.map(\.name).joined(separator: ", "))")
        }
    }

    func run() throws {
        try runReportingErrors {
            let reader = try openTrace(file)
            let lo = from.flatMap(Self.parseTime) ?? 0
            let hi = to.flatMap(Self.parseTime) ?? .max
            var kindMask = [Bool](repeating: kinds.isEmpty, count: 256)
            for k in kinds.flatMap({ $0.split(separator: ",") }) {
                if let kind = EventKind(name: String(k)) { kindMask[Int(kind.rawValue)] = true }
            }
            var deviceMask: Set<UInt16>?
            if !devices.isEmpty {
                var set = Set<UInt16>()
                for d in devices {
                    if let i = reader.metadata.deviceIndex(named: d) {
                        set.insert(i)
                    } else if let i = UInt16(d) {
                        set.insert(i)
                    } else {
                        warn("\(file): no device named '\(d)' (devices: \(reader.metadata.devices.map(\.name).joined(separator: ", ")))")
                    }
                }
                deviceMask = set
            }
            var out = StandardOutput(escaping: !jsonl)
            if jsonl { try out.line(try JSONLCodec.metadataLine(reader.metadata)) }
            try reader.forEachChunk(where: { c in
                c.header.eventCount > 0 && c.header.maxTimestamp >= lo && c.header.minTimestamp < hi
            }) { chunk in
                // Standard input is read once: metadata frames before this chunk have just been applied.
                let metadata = reader.metadata
                guard let base = chunk.records.baseAddress else { return }
                for i in 0..<chunk.count {
                    let p = base + i * Event.recordSize
                    guard kindMask[Int(p.load(as: UInt8.self))], let e = Event(record: p) else { continue }
                    guard e.timestamp >= lo, e.timestamp < hi else { continue }
                    if let deviceMask, !deviceMask.contains(e.device) { continue }
                    try out.line(jsonl ? JSONLCodec.eventLine(e, metadata: metadata, string: reader.string)
                                       : EventText.line(e, metadata: metadata, string: reader.string))
                }
            }
            try out.flush()
            if !reader.damage.isEmpty {
                for d in reader.damage { warn("\(file): \(d)") }
                throw ExitStatus.damaged
            }
        }
    }
}
