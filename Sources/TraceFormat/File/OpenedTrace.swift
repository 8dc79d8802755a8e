/// A trace opened for reading: a `.dmat` file through ``TraceReader`` or a dmatrace JSONL file decoded into
/// memory, behind one ``EventSource``.
public struct OpenedTrace {
    /// The events.
    public var source: any EventSource
    /// Damage found while reading, in words (call after the events were read).
    public var damage: () -> [String]

    public init(source: any EventSource, damage: @escaping () -> [String]) {
        self.source = source
        self.damage = damage
    }

    /// Opens `path`: `*.jsonl` as dmatrace JSONL, anything else as `.dmat` (`-` is standard input), with
    /// `decodeThreads` chunk-decompression threads when given (the reader's default otherwise).
    public static func open(_ path: String, decodeThreads: Int? = nil) throws -> OpenedTrace {
        if path.hasSuffix(".jsonl") {
            return OpenedTrace(source: try decodeJSONL(path), damage: { [] })
        }
        let reader = try TraceReader(path: path)
        if let decodeThreads { reader.decodeThreads = decodeThreads }
        return OpenedTrace(source: reader, damage: { reader.damage.map { "\($0)" } })
    }

    /// Decodes a JSONL trace. Events that carry no provenance of their own get the JSONL file and line,
    /// so findings point at the line that shows them.
    public static func decodeJSONL(_ path: String) throws -> EventBuffer {
        let bytes = try readWholeFile(path)
        var buffer = EventBuffer()
        var decoder = JSONLDecoder(path: path)
        var lineOf: [UInt64] = []
        try bytes.withUnsafeBytes { all in
            var start = 0
            while start < all.count {
                var end = start
                while end < all.count && all[end] != 0x0A { end += 1 }
                let before = buffer.events.count
                try decoder.decodeLine(UnsafeRawBufferPointer(rebasing: all[start..<end]), into: &buffer)
                for _ in before..<buffer.events.count { lineOf.append(UInt64(decoder.lineNumber)) }
                start = end + 1
            }
        }
        guard buffer.events.contains(where: { $0.source == Event.noSource }),
            buffer.metadata.inputs.count < Int(Event.noSource)
        else { return buffer }
        let index = UInt16(buffer.metadata.inputs.count)
        buffer.metadata.inputs.append(
            InputFile(path: path, format: "jsonl", positionUnit: .line, bytes: UInt64(bytes.count)))
        for i in buffer.events.indices where buffer.events[i].source == Event.noSource {
            buffer.events[i].source = index
            buffer.events[i].position = lineOf[i]
        }
        return buffer
    }
}
