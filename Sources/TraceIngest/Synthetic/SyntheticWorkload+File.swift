import TraceFormat

extension SyntheticWorkload {
    /// Writes the workload as a `.dmat` to `path` (`-` for standard output), its seed, size and planted bugs in
    /// the metadata's extra facts; `meter` counts the events generated.
    public func write(
        to path: String, options writer: TraceWriter.Options, noClobber: Bool, meter: ProgressMeter? = nil
    ) throws -> Summary {
        var meta = TraceMetadata()
        meta.extra["synth.seed"] = String(options.seed)
        meta.extra["synth.events"] = String(options.events)
        let bugs = options.bugs.map(\.rawValue)
        if !bugs.isEmpty { meta.extra["synth.bugs"] = bugs.sorted().joined(separator: ",") }
        let file = try TraceWriter(path: path, metadata: meta, options: writer, noClobber: noClobber)
        var sink = MeteredSink(file, meter: meter ?? ProgressMeter(unit: "events"))
        let summary = try generate(into: &sink)
        sink.flushMeter()
        try file.finish()
        return summary
    }
}

extension SyntheticWorkload.Summary: CustomStringConvertible {
    /// `N events, R requests[, planted: BUG=n ...]`.
    public var description: String {
        let planted = planted.sorted { $0.key.rawValue < $1.key.rawValue }
            .map { "\($0.key.rawValue)=\($0.value)" }.joined(separator: " ")
        return "\(events) events, \(requests) requests\(planted.isEmpty ? "" : ", planted: \(planted)")"
    }
}
