import TraceFormat

/// Imports the line-oriented JSON form of the event model (TraceFormat's ``JSONLCodec``): hand-written
/// scenarios and other tools' output.
///
/// Each line is decoded by ``JSONLDecoder`` into a scratch buffer, then moved into the ingest's sink with
/// its devices and strings re-registered there, so a JSONL input can be merged with others. The event's
/// provenance becomes this input and line; its clock the input's clock. A `metadata` line contributes its
/// capture facts (fields the ingest has not set), devices and extra facts. A line that does not decode is
/// reported with file:line and skipped.
public struct JSONLImporter: Importer {
    public static let formatID = "jsonl"
    /// An event line may give its CPU (`on_cpu`).
    public static let recordsCPU = true

    public init() {}

    /// A first non-blank line that is a JSON object with a `"kind"` key.
    public static func sniff(_ head: UnsafeRawBufferPointer) -> Int {
        var score = 0
        var done = false
        var n: UInt64 = 0
        _ = IngestInput.scanLines(head, final: true, line: &n) { raw, _ in
            if done { return }
            let v = LineView(raw)
            let i = v.skipSpaces(0)
            if i == v.count { return }
            done = true
            if v[i] == 0x7B && v.search("\"kind\"", from: i) != nil { score = 90 }
        }
        return score
    }

    public mutating func run(
        _ input: IngestInput, source: UInt16, clock: UInt8,
        into sink: inout some EventSink, diagnostics: inout IngestDiagnostics
    ) throws(IngestError) {
        var decoder = JSONLDecoder(path: input.path)
        var scratch = EventBuffer()
        var deviceMap: [UInt16: UInt16] = [:]
        var stringMap: [UInt32: UInt32] = [:]
        var sinkError: String?
        var decodedLines = 0
        let marker = "\u{0}jsonl-importer"
        scratch.metadata.extra[marker] = "1"
        input.forEachLine { raw, line in
            let before = scratch.metadata.devices.count
            do {
                try decoder.decodeLine(raw, into: &scratch)
            } catch {
                diagnostics.skip(IngestDiagnostics.Problem(file: input.path, position: line, message: "\(error)"))
                return
            }
            decodedLines += 1
            if scratch.metadata.extra[marker] == nil {
                // A metadata line replaced the scratch metadata: take its facts and devices.
                Self.mergeFacts(scratch.metadata, into: &sink.metadata)
                deviceMap = [:]
                for (i, d) in scratch.metadata.devices.enumerated() { deviceMap[UInt16(i)] = sink.device(d) }
                scratch.metadata.extra[marker] = "1"
                diagnostics.comments += 1
            } else if scratch.metadata.devices.count > before {
                for i in before..<scratch.metadata.devices.count {
                    deviceMap[UInt16(i)] = sink.device(scratch.metadata.devices[i])
                }
            }
            for var e in scratch.events {
                if e.hasDevice { e.device = deviceMap[e.device] ?? Event.noDevice }
                for f in KindSchema.fields(e.kind) where f.type == .string {
                    let id = UInt32(truncatingIfNeeded: e.value(of: f.slot))
                    guard id != Event.noString else { continue }
                    let mapped: UInt32
                    if let m = stringMap[id] {
                        mapped = m
                    } else {
                        mapped = scratch.string(id).map { sink.intern($0) } ?? Event.noString
                        stringMap[id] = mapped
                    }
                    _ = e.set(f.slot, UInt64(mapped))
                }
                e.source = source
                e.clock = clock
                e.position = line
                do { try sink.append(e) } catch { if sinkError == nil { sinkError = "\(error)" } }
                diagnostics.understood[e.kind.name, default: 0] += 1
            }
            scratch.events.removeAll(keepingCapacity: true)
        }
        try input.checkReadError()
        if let e = sinkError { throw .unreadable(path: input.path, reason: "cannot store events: \(e)") }
        if decodedLines == 0 && diagnostics.skipped > 0 {
            throw .badFormat(
                path: input.path, offset: 0,
                reason: "no JSONL line decoded (first: \(diagnostics.problems.first.map { "\($0)" } ?? ""))")
        }
    }

    /// Capture facts of a JSONL metadata line fill what the ingest does not know yet; extra facts are added.
    static func mergeFacts(_ m: TraceMetadata, into target: inout TraceMetadata) {
        var c = target.capture
        let o = m.capture
        c.kernelRelease = c.kernelRelease ?? o.kernelRelease
        c.kernelCommandLine = c.kernelCommandLine ?? o.kernelCommandLine
        c.qemuVersion = c.qemuVersion ?? o.qemuVersion
        c.machine = c.machine ?? o.machine
        c.viommu = c.viommu ?? o.viommu
        c.viommuProperties.merge(o.viommuProperties) { a, _ in a }
        c.guestIOMMU = c.guestIOMMU ?? o.guestIOMMU
        c.flushPolicy = c.flushPolicy ?? o.flushPolicy
        c.swiotlbForced = c.swiotlbForced ?? o.swiotlbForced
        c.confidential = c.confidential ?? o.confidential
        target.capture = c
        for (k, v) in m.extra where target.extra[k] == nil { target.extra[k] = v }
    }
}
