/// Anything that can play a trace's events in order: a `.dmat` file being read (``TraceReader``) or an
/// in-memory ``EventBuffer``. Replay and analysis consume this protocol, so tests can feed events directly
/// and nothing downstream needs the whole trace in memory.
public protocol EventSource {
    /// The trace's metadata (device table, clocks, inputs, capture facts).
    var metadata: TraceMetadata { get }
    /// The string with id `id` from the trace's string table.
    func string(_ id: UInt32) -> String?
    /// Calls `body` with each event's index (0-based, in file order) and the event.
    func forEachEvent(_ body: (Int, Event) throws -> Void) throws
}

/// Where importers put what they decode: events, strings and devices. ``EventBuffer`` collects them in
/// memory; the `.dmat` writer streams them to a file.
public protocol EventSink {
    /// Appends one event.
    mutating func append(_ event: Event) throws
    /// Returns the id of `string` in the string table, adding it if new.
    mutating func intern(_ string: String) -> UInt32
    /// Returns the index of the device named `info.name`, adding `info` if new and otherwise merging the
    /// non-nil fields of `info` into the existing entry.
    mutating func device(_ info: DeviceInfo) -> UInt16
    /// The metadata collected so far; importers refine capture facts, clocks and inputs through it.
    var metadata: TraceMetadata { get set }
}
