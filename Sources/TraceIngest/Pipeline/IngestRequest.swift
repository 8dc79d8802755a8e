import TraceFormat

/// One `dmatrace ingest` run: the inputs (or a `tools/capture` directory), the capture facts, where the trace goes
/// and what to accept. ``run(_:)`` plans, merges, checks and writes through ``IngestPipeline``, telling its
/// ``IngestObserver`` what the user is told, in order.
public struct IngestRequest: Sendable {
    /// Input files (`-` for standard input); ignored with ``captureDir``.
    public var inputs: [String]
    /// A capture directory made by tools/capture: its inputs, and the facts of its config.json.
    public var captureDir: String?
    /// `auto` or an importer id of ``ImporterRegistry/standard``.
    public var format: String
    /// QEMU's trace-events-all, for a simpletrace or log.
    public var traceEvents: String?
    /// `key=value` capture facts; they win over the capture directory's.
    public var meta: [String]
    /// The `.dmat` to write (`-` for standard output); nil for a dry run.
    public var output: String?
    public var writer: TraceWriter.Options
    public var noClobber: Bool
    /// Accept an input of which nothing was understood, and a trace without events.
    public var allowEmpty: Bool
    /// Merge guest and host inputs even when they do not look like one run.
    public var forceMerge: Bool

    public init(
        inputs: [String], captureDir: String?, format: String, traceEvents: String?, meta: [String],
        output: String?, writer: TraceWriter.Options, noClobber: Bool, allowEmpty: Bool, forceMerge: Bool
    ) {
        self.inputs = inputs
        self.captureDir = captureDir
        self.format = format
        self.traceEvents = traceEvents
        self.meta = meta
        self.output = output
        self.writer = writer
        self.noClobber = noClobber
        self.allowEmpty = allowEmpty
        self.forceMerge = forceMerge
    }

    /// Ingests the inputs into ``output`` (a second time with a side input when the capture directory's edu
    /// device DMA was not seen by QEMU's log: ``CaptureDirectory/eduSideInput(for:)``). A result that must not be
    /// trusted throws its ``IngestRefusal`` after the observer was shown the report.
    public func run(_ observer: some IngestObserver) throws {
        var facts: [String: String] = [:]
        var inputs = self.inputs
        var forceMerge = self.forceMerge
        let capture = try captureDir.map { dir throws(IngestError) in try CaptureDirectory.open(dir) }
        if let capture {
            inputs = capture.inputs
            for (k, v) in capture.meta { facts[k] = v }
            if let why = capture.forceMergeReason, !forceMerge {
                observer.warning("\(capture.path): --force-merge: \(why)")
                forceMerge = true
            }
        }
        for m in meta {
            let k = m.firstIndex(of: "=")!
            facts[String(m[..<k])] = String(m[m.index(after: k)...])
        }
        try ingest(inputs, facts: facts, forceMerge: forceMerge, observer)
        // The edu device's programmed DMA, when QEMU's log could not see it: a side input, and ingest again.
        if let capture, let out = output, out != "-", let lines = try capture.eduSideInput(for: out) {
            let side = CaptureDirectory.eduSideInputPath(for: out)
            let file = try OutputFile(try OutputTarget.resolve(side, inputs: inputs))
            try file.write(lines.joined(separator: "\n") + "\n")
            try file.commit()
            try ingest(inputs + [side], facts: facts, forceMerge: forceMerge, observer)
        }
    }

    private func ingest(
        _ inputs: [String], facts: [String: String], forceMerge: Bool, _ observer: some IngestObserver
    ) throws {
        let pipeline = IngestPipeline(
            registry: .standard, options: ImportOptions(traceEvents: traceEvents), format: format)
        let plan = try pipeline.plan(try inputs.map { try IngestInput.open($0) })
        let destination = output.map {
            IngestDestination(
                path: $0, options: writer, inputs: inputs + [traceEvents].compactMap { $0 }, noClobber: noClobber)
        }
        let meter = ProgressMeter(unit: "events")
        let (report, events) = try observer.progress(meter) {
            try pipeline.write(plan, meta: facts, to: destination, progress: meter) { report, events in
                let (refusal, warnings) = report.verdict(
                    events: events, allowEmpty: allowEmpty, forceMerge: forceMerge)
                for w in warnings { observer.warning(w) }
                guard let refusal else { return }
                observer.refused(report)
                throw refusal
            }
        }
        observer.finished(report, events: events, target: output)
    }
}

/// What an ``IngestRequest`` tells its user while it runs (the command line prints it on standard error).
public protocol IngestObserver {
    /// A warning.
    func warning(_ message: String)
    /// Runs `body`, which counts the events into `meter`, with its progress shown.
    func progress<T>(_ meter: ProgressMeter, _ body: () throws -> T) throws -> T
    /// The result is refused: `report` is the evidence (the refusal is thrown next).
    func refused(_ report: IngestReport)
    /// One ingest finished: `events` were written to `target` (nil: a dry run).
    func finished(_ report: IngestReport, events: UInt64, target: String?)
}
