extension TraceReader {
    /// Calls `body` with every event `filter` keeps, in file order, with the metadata in effect for it (standard
    /// input is read once: metadata frames before a chunk have been applied when its events are seen). Chunks
    /// outside absolute time bounds are skipped undecoded; relative bounds count from the trace's first event,
    /// whatever its kind. Inlinable, so `cat`'s per-event closure is inlined into its loop as when the loop was
    /// the command's own.
    @inlinable
    public func forEachEvent(matching filter: EventFilter, _ body: (Event, TraceMetadata) throws -> Void) throws {
        var filter = filter
        let range = filter.absoluteRange
        var kindMask = [Bool](repeating: filter.kinds == nil, count: 256)
        for k in filter.kinds ?? [] { kindMask[Int(k.rawValue)] = true }
        try forEachChunk(where: { c in
            c.header.eventCount > 0
                && (range.map { c.header.maxTimestamp >= $0.from && c.header.minTimestamp < $0.to } ?? true)
        }) { chunk in
            let metadata = self.metadata
            guard let base = chunk.records.baseAddress else { return }
            if chunk.count > 0, let first = Event(record: base) { filter.noteStart(first.timestamp) }
            for i in 0..<chunk.count {
                let p = base + i * Event.recordSize
                guard kindMask[Int(p.load(as: UInt8.self))], let e = Event(record: p), filter.matches(e) else {
                    continue
                }
                try body(e, metadata)
            }
        }
    }
}
