extension TraceWriter {
    /// Writes an in-memory trace to `path` (or standard output for `-`): strings first, in table order, so
    /// string ids stay the same; then every event; then ``finish()``. The file declares format 3.0 when an
    /// event carries a CPU (``Options/cpus``), else the version its layout needs.
    public static func write(_ buffer: EventBuffer, to path: String, options: Options = Options()) throws {
        var options = options
        options.cpus = options.cpus || buffer.events.contains { $0.cpu != nil }
        let w = try TraceWriter(path: path, metadata: buffer.metadata, options: options)
        for s in buffer.strings { _ = w.intern(s) }
        for e in buffer.events { try w.append(e) }
        try w.finish()
    }
}

extension TraceReader {
    /// Decodes the whole trace into memory (for tests and small traces; replay should stream with
    /// ``forEachChunk(_:)``). Damage is skipped as usual and left in ``damage``.
    public func load() throws -> EventBuffer {
        var events: [Event] = []
        events.reserveCapacity(Int(clamping: eventCount))
        try forEachEvent { _, e in events.append(e) }
        return EventBuffer(metadata: metadata, events: events, strings: strings)
    }
}
