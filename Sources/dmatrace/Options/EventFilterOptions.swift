import ArgumentParser
import TraceFormat

/// `--device`, `--kind`, `--from`, `--to`: which events `cat` and `export` look at (``EventFilter``).
struct EventFilterOptions: ParsableArguments {
    @Option(
        name: .customLong("device"), help: "Only events of this device: 0000:00:05.0, 00:05.0 or its index; repeatable."
    )
    var devices: [String] = []

    @Option(name: .customLong("kind"), help: "Only events of this kind (e.g. dma_map); repeatable or comma-separated.")
    var kinds: [String] = []

    @Option(
        help:
            "Only events at or after this time: nanoseconds or a number with ns, us, ms, s; +TIME counts from the first event."
    )
    var from: String?

    @Option(help: "Only events before this time (as --from).")
    var to: String?

    func validate() throws {
        if let from, EventFilter.parseTime(from) == nil { throw ValidationError("--from '\(from)' is not a time") }
        if let to, EventFilter.parseTime(to) == nil { throw ValidationError("--to '\(to)' is not a time") }
        do { _ = try EventFilter.parseKinds(kinds) } catch { throw ValidationError(error.description) }
    }

    /// The filter for a trace with `metadata` read from `file`; an unknown device is an error (exit 2).
    func filter(metadata: TraceMetadata, file: String) throws -> EventFilter {
        EventFilter(
            kinds: try EventFilter.parseKinds(kinds),
            devices: try EventFilter.resolveDevices(devices, in: metadata, file: file),
            from: from.flatMap(EventFilter.parseTime), to: to.flatMap(EventFilter.parseTime))
    }
}
