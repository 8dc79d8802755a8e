import FoundationEssentials

/// What a trace holds (`dmatrace info`): header, capture facts, devices, counts per kind, time span, chunks and
/// damage. Its `Codable` form is `info --format json` (keys sorted).
public struct TraceSummary: Codable, Sendable {
    public struct Kind: Codable, Sendable {
        public var kind: String
        public var id: Int
        public var count: UInt64
        public var known: Bool
    }
    public var path: String
    public var formatVersion: String
    public var recordSize: Int
    /// Chunk layouts used (`rows`, `compact`, or `layout-N` for unknown ones), sorted.
    public var layouts: [String]
    public var complete: Bool
    public var events: UInt64
    public var chunks: Int
    public var fileBytes: UInt64
    public var recordBytes: UInt64
    public var compressionRatio: Double
    public var bytesPerEvent: Double
    public var firstTimestamp: UInt64?
    public var lastTimestamp: UInt64?
    public var kinds: [Kind]
    public var unknownKindRecords: UInt64
    public var unknownFrames: Int
    public var strings: Int
    public var metadata: TraceMetadata
    public var damage: [TraceDamage]
    public var chunkList: [Chunk]?
    /// The recorded scenario (`KERNEL+SETTING@MODE`) from the metadata completed by the evidence, or why not.
    public var recordedScenario: String?
    /// What the events show about the recorded scenario (`ScenarioEvidence`), one line per fact.
    public var scenarioEvidence: [String]?

    public struct Chunk: Codable, Sendable {
        public var sequence: UInt32
        public var offset: UInt64
        public var events: UInt32
        public var minTimestamp: UInt64
        public var maxTimestamp: UInt64
        public var compressedBytes: UInt64
        public var intact: Bool
    }

    /// The summary of a reader that has read (or verified) the whole trace; ``chunkList`` only with `chunks`.
    public init(_ r: TraceReader, chunks listChunks: Bool = false) {
        var kinds: [Kind] = []
        for raw in 0..<256 where r.kindCounts[raw] > 0 {
            let known = EventKind(rawValue: UInt8(raw))
            let name = known?.name ?? r.header.schema.kindName(UInt8(raw)) ?? "kind-\(raw)"
            kinds.append(Kind(kind: name, id: raw, count: r.kindCounts[raw], known: known != nil))
        }
        let records = r.uncompressedBytes
        let events = r.eventCount
        func rounded(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
        path = r.path
        formatVersion = "\(r.header.major).\(r.header.minor)"
        recordSize = Int(r.header.recordSize)
        layouts = Set(r.chunks.map { $0.header.layout?.description ?? "layout-\($0.header.flags & 0xFF)" }).sorted()
        complete = r.isComplete
        self.events = events
        chunks = r.chunks.count
        fileBytes = r.inputBytes
        recordBytes = records
        compressionRatio = r.inputBytes > 0 ? rounded(Double(records) / Double(r.inputBytes)) : 0
        bytesPerEvent = events > 0 ? rounded(Double(r.inputBytes) / Double(events)) : 0
        firstTimestamp = r.timeSpan?.lowerBound
        lastTimestamp = r.timeSpan?.upperBound
        self.kinds = kinds
        unknownKindRecords = r.unknownKindRecords
        unknownFrames = r.unknownFrames
        strings = r.strings.count
        metadata = r.metadata
        damage = r.damage
        if listChunks {
            chunkList = r.chunks.map {
                Chunk(
                    sequence: $0.header.sequence, offset: $0.headerOffset, events: $0.header.eventCount,
                    minTimestamp: $0.header.minTimestamp, maxTimestamp: $0.header.maxTimestamp,
                    compressedBytes: $0.header.compressedSize, intact: $0.intact)
            }
        }
    }

    /// The JSON form: sorted keys, pretty-printed, slashes unescaped.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// The text form, one line each (not yet escaped for a terminal).
    public var text: [String] {
        let r = self
        var l: [String] = []
        l.append("file:        \(r.path)")
        let layouts = r.layouts.isEmpty ? "" : ", \(r.layouts.joined(separator: "+")) layout"
        l.append(
            "format:      dmat \(r.formatVersion), \(r.recordSize)-byte records\(layouts)\(r.complete ? "" : ", NOT FINISHED (no index)")"
        )
        l.append("events:      \(r.events) in \(r.chunks) chunks")
        if let a = r.firstTimestamp, let b = r.lastTimestamp {
            l.append("time span:   \(a) .. \(b) ns (\(Self.seconds(b - a)))")
        }
        l.append(
            "size:        \(r.fileBytes) bytes on disk, \(r.recordBytes) bytes of records, ratio \(r.compressionRatio), \(r.bytesPerEvent) bytes/event"
        )
        let c = r.metadata.capture
        var facts: [String] = []
        if let v = c.kernelRelease { facts.append("kernel \(v)") }
        if let v = c.qemuVersion { facts.append("qemu \(v)") }
        if let v = c.machine { facts.append("machine \(v)") }
        if let v = c.viommu { facts.append("viommu \(v)") }
        for (k, v) in c.viommuProperties.sorted(by: { $0.key < $1.key }) { facts.append("\(k)=\(v)") }
        if let v = c.guestIOMMU { facts.append("guest iommu \(v.rawValue)") }
        if let v = c.flushPolicy { facts.append(v.rawValue) }
        if let v = c.swiotlbForced { facts.append("swiotlb forced \(v)") }
        if let v = c.confidential { facts.append("confidential \(v)") }
        if let v = c.guestCPUs { facts.append("\(v) guest CPU\(v == 1 ? "" : "s")") }
        l.append("capture:     " + (facts.isEmpty ? "-" : facts.joined(separator: ", ")))
        if let s = r.recordedScenario { l.append("recorded scenario: \(s)") }
        if let ev = r.scenarioEvidence, !ev.isEmpty {
            l.append("scenario evidence:")
            for e in ev { l.append("  " + e) }
        }
        if !r.metadata.clocks.isEmpty {
            l.append(
                "clocks:      "
                    + r.metadata.clocks.map { c in
                        "\(c.id) \(c.name)" + (c.offsetToReferenceNs.map { " (offset \($0) ns)" } ?? "")
                    }.joined(separator: ", "))
        }
        for (i, f) in r.metadata.inputs.enumerated() {
            l.append("input \(i):     \(f.path) (\(f.format), positions are \(f.positionUnit.rawValue)s)")
        }
        l.append("devices:     \(r.metadata.devices.count)")
        for (i, d) in r.metadata.devices.enumerated() {
            var parts = ["  \(i) \(d.name)"]
            if let v = d.virtioType { parts.append("virtio-\(v)") }
            if let v = d.vendorID, let p = d.deviceID { parts.append(Self.hex4(v) + ":" + Self.hex4(p)) }
            if let v = d.transport { parts.append(v.rawValue) }
            if let v = d.iommuPlatform { parts.append("iommu_platform=\(v ? "on" : "off")") }
            if let v = d.driver { parts.append("driver \(v)") }
            if let v = d.iommuGroup { parts.append("group \(v)") }
            if let v = d.behindIOMMU, !v { parts.append("bypasses the IOMMU") }
            l.append(parts.joined(separator: " "))
        }
        l.append("kinds:")
        let width = r.kinds.map(\.kind.count).max() ?? 0
        for k in r.kinds {
            l.append(
                "  " + k.kind + String(repeating: " ", count: width - k.kind.count) + "  \(k.count)"
                    + (k.known ? "" : "  (unknown to this dmatrace, skipped)"))
        }
        if r.unknownFrames > 0 { l.append("unknown frames skipped: \(r.unknownFrames)") }
        l.append("strings:     \(r.strings)")
        if let list = r.chunkList {
            l.append("chunks:      number  byte offset  events  time range  compressed bytes")
            for c in list {
                l.append(
                    "  \(c.sequence)  \(c.offset)  \(c.events)  \(c.minTimestamp)..\(c.maxTimestamp)  \(c.compressedBytes)"
                        + (c.intact ? "" : "  DAMAGED"))
            }
        }
        if r.damage.isEmpty {
            l.append("damage:      none")
        } else {
            l.append("damage:      \(r.damage.count)")
            for d in r.damage { l.append("  \(d)") }
        }
        return l
    }

    static func hex4(_ v: UInt16) -> String { Hex.digits(v, width: 4) }

    static func seconds(_ ns: UInt64) -> String {
        let ms = ns / 1_000_000
        return "\(ms / 1000).\(String(repeating: "0", count: 3 - String(ms % 1000).count))\(ms % 1000) s"
    }
}
