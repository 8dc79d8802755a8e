import ArgumentParser
import TraceFormat

/// `dmatrace cat`: print events as text or JSONL, filtered.
struct CatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cat",
        abstract: "Print a trace's events as text lines or JSONL, optionally filtered by device, kind and time.",
        discussion: """
            Text lines are 'TIMESTAMP KIND DEVICE name=value ... src=FILE:LINE'; --format jsonl prints the \
            metadata line and then one JSON object per event (schemas/event.schema.json), which \
            'dmatrace ingest' reads back. Times are nanoseconds, or a number with a unit \
            (ns, us, ms, s); +TIME counts from the trace's first event. Devices are named as in the trace \
            (0000:00:05.0), in the short form dmesg and QEMU print (00:05.0), or by index; an unknown device is \
            an error. Exit status: 0 ok; 3 the trace is damaged (readable events were printed, \
            damage reported on stderr); 2 not a trace or unreadable; 64 usage error.
            """)

    @Argument(help: "Trace file, or '-' for standard input.")
    var file: String = "-"

    /// The output format.
    enum Format: String, ExpressibleByArgument, CaseIterable { case text, jsonl }

    @Option(help: "Output format: text (lines) or jsonl (the metadata line, then one JSON object per event).")
    var format: Format = .text

    /// The old spelling of `--format jsonl`.
    @Flag(help: .hidden)
    var jsonl = false

    @OptionGroup var filterOptions: EventFilterOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var quiet: QuietOption

    func validate() throws { try Terminal.refuseBinaryInput([file]) }

    func run() throws {
        try runReportingErrors {
            let reader = try openTrace(file)
            var filter = try filterOptions.filter(metadata: reader.metadata, file: file)
            let range = filter.absoluteRange
            let jsonl = jsonl || format == .jsonl
            var out = try StandardOutput(escaping: !jsonl, to: output, inputs: [file])
            if jsonl { try out.line(try JSONLCodec.metadataLine(reader.metadata)) }
            var kindMask = [Bool](repeating: filter.kinds == nil, count: 256)
            for k in filter.kinds ?? [] { kindMask[Int(k.rawValue)] = true }
            try reader.forEachChunk(where: { c in
                // Chunks are skipped by time only for absolute bounds (relative ones need the first event).
                c.header.eventCount > 0
                    && (range.map { c.header.maxTimestamp >= $0.from && c.header.minTimestamp < $0.to } ?? true)
            }) { chunk in
                // Standard input is read once: metadata frames before this chunk have just been applied.
                let metadata = reader.metadata
                guard let base = chunk.records.baseAddress else { return }
                // Relative bounds count from the trace's first event, whatever its kind.
                if chunk.count > 0, let first = Event(record: base) { filter.noteStart(first.timestamp) }
                for i in 0..<chunk.count {
                    let p = base + i * Event.recordSize
                    guard kindMask[Int(p.load(as: UInt8.self))], let e = Event(record: p), filter.matches(e) else {
                        continue
                    }
                    if jsonl {
                        try out.line(JSONLCodec.eventLine(e, metadata: metadata, string: reader.string))
                    } else {
                        try out.line { EventText.write(e, metadata: metadata, string: reader.string, into: &$0) }
                    }
                }
            }
            try out.commit()
            if !reader.damage.isEmpty {
                for d in reader.damage { warn("\(file): \(d)") }
                throw ExitStatus.damaged
            }
        }
    }
}
