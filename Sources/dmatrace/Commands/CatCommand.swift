import ArgumentParser
import TraceFormat

/// `dmatrace cat`: print events as text or JSONL, filtered (``TraceReader/forEachEvent(matching:_:)``).
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

    @OptionGroup var selection: CatOptions
    @OptionGroup var filterOptions: EventFilterOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var quiet: QuietOption

    func validate() throws { try selection.check() }

    func run() throws {
        let (file, jsonl) = (selection.file, selection.isJSONL)
        try runReportingErrors {
            let reader = try openTrace(file)
            let filter = try filterOptions.filter(metadata: reader.metadata, file: file)
            var out = try StandardOutput(escaping: !jsonl, to: output, inputs: [file])
            if jsonl { try out.line(try JSONLCodec.metadataLine(reader.metadata)) }
            try reader.forEachEvent(matching: filter) { e, metadata in
                if jsonl {
                    try out.line(JSONLCodec.eventLine(e, metadata: metadata, string: reader.string))
                } else {
                    try out.line { EventText.write(e, metadata: metadata, string: reader.string, into: &$0) }
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
