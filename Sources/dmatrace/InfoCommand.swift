import ArgumentParser
import FoundationEssentials
import Models
import Replay
import TraceFormat

/// `dmatrace info`: what a trace holds.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show a trace's header, capture facts, devices, event counts per kind, time span, chunks and damage.",
        discussion: """
            Decodes the whole trace (so counts and damage are exact). Exit status: 0 ok; 3 the trace is \
            damaged (shown under "damage", counts cover what was readable); 2 not a trace or unreadable; \
            64 usage error.
            """)

    @Argument(help: "Trace file, or '-' for standard input.")
    var file: String = "-"

    @Flag(help: "Print a JSON object (keys sorted) instead of text.")
    var json = false

    @Flag(help: "Also list every chunk: number, byte offset, events, time range, compressed bytes, state.")
    var chunks = false

    /// The `--json` form.
    struct Report: Codable {
        struct Kind: Codable {
            var kind: String
            var id: Int
            var count: UInt64
            var known: Bool
        }
        var path: String
        var formatVersion: String
        var recordSize: Int
        /// Chunk layouts used (`rows`, `compact`, or `layout-N` for unknown ones), sorted.
        var layouts: [String]
        var complete: Bool
        var events: UInt64
        var chunks: Int
        var fileBytes: UInt64
        var recordBytes: UInt64
        var compressionRatio: Double
        var bytesPerEvent: Double
        var firstTimestamp: UInt64?
        var lastTimestamp: UInt64?
        var kinds: [Kind]
        var unknownKindRecords: UInt64
        var unknownFrames: Int
        var strings: Int
        var metadata: TraceMetadata
        var damage: [TraceDamage]
        var chunkList: [Chunk]?
        /// The recorded scenario (`KERNEL+SETTING@MODE`) from the metadata completed by the evidence, or why not.
        var recordedScenario: String?
        /// What the events show about the recorded scenario (``ScenarioEvidence``), one line per fact.
        var scenarioEvidence: [String]?

        struct Chunk: Codable {
            var sequence: UInt32
            var offset: UInt64
            var events: UInt32
            var minTimestamp: UInt64
            var maxTimestamp: UInt64
            var compressedBytes: UInt64
            var intact: Bool
        }
    }

    func run() throws {
        try runReportingErrors {
            let reader = try openTrace(file)
            try reader.verify()
            var report = Self.report(reader)
            if reader.damage.isEmpty {
                let evidence = try ScenarioEvidence.scan(reader)
                let inferences = evidence.infer(metadata: reader.metadata)
                report.scenarioEvidence = ScenarioEvidence.describe(inferences, metadata: reader.metadata)
                    + IOMMUAttachment.describe(reader.metadata)
                let completed = evidence.apply(to: reader.metadata)
                switch RecordedScenario.infer(metadata: completed, catalog: try ModelCatalog.builtin()) {
                case let .success(s):
                    let setting = s.guestIOMMU ?? GuestIOMMUSetting(capture: completed.capture)
                    report.recordedScenario = "\(s.kernel.id)\(setting.map { "+\($0.rawValue)" } ?? "")@\(s.mode.id)"
                case let .failure(e):
                    report.recordedScenario = "cannot tell: \(e)"
                }
            }
            if chunks {
                report.chunkList = reader.chunks.map {
                    Report.Chunk(sequence: $0.header.sequence, offset: $0.headerOffset, events: $0.header.eventCount,
                                 minTimestamp: $0.header.minTimestamp, maxTimestamp: $0.header.maxTimestamp,
                                 compressedBytes: $0.header.compressedSize, intact: $0.intact)
                }
            }
            var out = StandardOutput(escaping: !json)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
                try out.line(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                for l in Self.text(report) { try out.line(l) }
            }
            try out.flush()
            if !reader.damage.isEmpty { throw ExitStatus.damaged }
        }
    }

    static func report(_ r: TraceReader) -> Report {
        var kinds: [Report.Kind] = []
        for raw in 0..<256 where r.kindCounts[raw] > 0 {
            let known = EventKind(rawValue: UInt8(raw))
            let name = known?.name ?? r.header.schema.kindName(UInt8(raw)) ?? "kind-\(raw)"
            kinds.append(Report.Kind(kind: name, id: raw, count: r.kindCounts[raw], known: known != nil))
        }
        let records = r.uncompressedBytes
        let events = r.eventCount
        func rounded(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
        return Report(
            path: r.path, formatVersion: "\(r.header.major).\(r.header.minor)", recordSize: Int(r.header.recordSize),
            layouts: Set(r.chunks.map { $0.header.layout?.description ?? "layout-\($0.header.flags & 0xFF)" }).sorted(),
            complete: r.isComplete, events: events, chunks: r.chunks.count, fileBytes: r.inputBytes,
            recordBytes: records,
            compressionRatio: r.inputBytes > 0 ? rounded(Double(records) / Double(r.inputBytes)) : 0,
            bytesPerEvent: events > 0 ? rounded(Double(r.inputBytes) / Double(events)) : 0,
            firstTimestamp: r.timeSpan?.lowerBound, lastTimestamp: r.timeSpan?.upperBound,
            kinds: kinds, unknownKindRecords: r.unknownKindRecords, unknownFrames: r.unknownFrames,
            strings: r.strings.count, metadata: r.metadata, damage: r.damage, chunkList: nil)
    }

    static func text(_ r: Report) -> [String] {
        var l: [String] = []
        l.append("file:        \(r.path)")
        let layouts = r.layouts.isEmpty ? "" : ", \(r.layouts.joined(separator: "+")) layout"
        l.append("format:      dmat \(r.formatVersion), \(r.recordSize)-byte records\(layouts)\(r.complete ? "" : ", NOT FINISHED (no index)")")
        l.append("events:      \(r.events) in \(r.chunks) chunks")
        if let a = r.firstTimestamp, let b = r.lastTimestamp {
            l.append("time span:   \(a) .. \(b) ns (\(seconds(b - a)))")
        }
        l.append("size:        \(r.fileBytes) bytes on disk, \(r.recordBytes) bytes of records, ratio \(r.compressionRatio), \(r.bytesPerEvent) bytes/event")
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
        l.append("capture:     " + (facts.isEmpty ? "-" : facts.joined(separator: ", ")))
        if let s = r.recordedScenario { l.append("recorded scenario: \(s)") }
        if let ev = r.scenarioEvidence, !ev.isEmpty {
            l.append("scenario evidence:")
            for e in ev { l.append("  " + e) }
        }
        if !r.metadata.clocks.isEmpty {
            l.append("clocks:      " + r.metadata.clocks.map { c in
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
            if let v = d.vendorID, let p = d.deviceID { parts.append(hex4(v) + ":" + hex4(p)) }
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
            l.append("  " + k.kind + String(repeating: " ", count: width - k.kind.count) + "  \(k.count)"
                     + (k.known ? "" : "  (unknown to this dmatrace, skipped)"))
        }
        if r.unknownFrames > 0 { l.append("unknown frames skipped: \(r.unknownFrames)") }
        l.append("strings:     \(r.strings)")
        if let list = r.chunkList {
            l.append("chunks:      number  byte offset  events  time range  compressed bytes")
            for c in list {
                l.append("  \(c.sequence)  \(c.offset)  \(c.events)  \(c.minTimestamp)..\(c.maxTimestamp)  \(c.compressedBytes)"
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

    static func hex4(_ v: UInt16) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 4 - s.count) + s
    }

    static func seconds(_ ns: UInt64) -> String {
        let ms = ns / 1_000_000
        return "\(ms / 1000).\(String(repeating: "0", count: 3 - String(ms % 1000).count))\(ms % 1000) s"
    }
}
