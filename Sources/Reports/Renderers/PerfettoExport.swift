import Analysis
import Replay
import TraceFormat

/// Exports a trace as Chrome / Perfetto trace-event JSON (the "JSON Array/Object Format" both the legacy
/// chrome://tracing viewer and ui.perfetto.dev open): one process for the trace, one thread per device
/// (tid 0 for events without a device). DMA-API and IOMMU mappings are nestable async slices (`b`/`e` with one
/// id per mapping, so mappings that overlap in time on one device never overlap on a synchronous track), every
/// other event an instant (`i`); findings are global instant events at their first occurrence, so they stand
/// out on the timeline. Timestamps are microseconds with three decimals counted from the first exported event
/// (`otherData.timeOriginNs` holds it), so every nanosecond survives the reader's double-precision parse;
/// they are shifted into the reference clock when the trace's clock domains carry an offset.
public enum PerfettoExport {
    /// A mapping waiting for its unmap: its slice id and name.
    struct Open { var id: Int; var name: String; var tid: Int }

    /// The JSON document for `source`, with `findings` marked.
    public static func render(
        _ source: some EventSource, trace: String, findings: [Finding], filter: EventFilter = EventFilter()
    ) throws -> String {
        var all = ""
        try export(source, trace: trace, findings: { findings }, filter: filter) { all += $0 }
        return all
    }

    /// What `dmatrace export` writes: the timeline of `source` (read from `path`) with the findings of the offline
    /// DMA-API debug checks, run in the same pass (standard input can be read only once) whatever `filter` keeps,
    /// plus the findings of `report` for this trace; streamed to `write`.
    public static func exportWithChecks(
        _ source: some EventSource, path: String, report: Report?, filter: EventFilter,
        write: (String) throws -> Void
    ) throws {
        let name = Fingerprint.traceName(path)
        let extra = report?.findings.filter { $0.trace == name } ?? []
        var checker = DMADebugChecker(metadata: source.metadata)
        try export(
            source, trace: name,
            findings: { (checker.finish(trace: path).findings() + extra).sorted(by: Finding.reportOrder) },
            filter: filter,
            onEvent: { index, event in
                if index == 0 { checker.refresh(metadata: source.metadata) }
                checker.consume(index: index, event)
            }, write: write)
    }

    /// Streams the JSON document to `write` in pieces of about 1 MiB, so memory stays bounded by the
    /// mappings open at a time, not by the trace. The trace is read once: `onEvent` sees every event as it
    /// goes (e.g. to run the DMA-API checks in the same pass, whatever `filter` keeps), and `findings` is asked
    /// for only at the end. Only events `filter` keeps are exported (an unmap outside it leaves its mapping open
    /// until the end of the export).
    public static func export(
        _ source: some EventSource, trace: String, findings: () throws -> [Finding],
        filter initialFilter: EventFilter = EventFilter(),
        onEvent: (Int, Event) -> Void = { _, _ in },
        write: (String) throws -> Void
    ) throws {
        let meta = source.metadata
        var filter = initialFilter
        var body = ""
        let offsets = meta.clocks.reduce(into: [UInt8: Int64]()) { $0[$1.id] = $1.offsetToReferenceNs ?? 0 }
        var open: [String: Open] = [:]
        var openOrder: [String] = []
        var nextID = 1
        var origin: Int64?
        var last: Int64 = 0
        func tid(_ e: Event) -> Int { e.device == Event.noDevice ? 0 : Int(e.device) + 1 }
        func rel(_ ts: Int64) -> String { us(ts &- (origin ?? ts)) }
        var header: String?
        func flushIfBig() throws {
            if body.utf8.count >= 1 << 20, let h = header {
                try write(h + body)
                header = ""
                body = ""
            }
        }
        try source.forEachEvent { index, e in
            onEvent(index, e)
            guard filter.matches(e) else { return }
            let (t, overflow) = Int64(clamping: e.timestamp).addingReportingOverflow(offsets[e.clock] ?? 0)
            let ts = overflow ? Int64(clamping: e.timestamp) : t
            if origin == nil {
                origin = ts
                header = Self.header(trace: trace, meta: meta, origin: ts)
            }
            try flushIfBig()
            last = max(last, ts)
            let key = "\(e.device):\(e.address)"
            switch e.kind {
            case .dmaMap, .dmaAlloc, .iommuMap:
                let k = (e.kind == .iommuMap ? "i" : "d") + key
                if let o = open[k] {  // mapped again without an unmap in between: close the old slice here
                    body +=
                        ",\n{\"name\":\(q(o.name)),\"cat\":\"mapping\",\"ph\":\"e\",\"id\":\(o.id),\"pid\":1,\"tid\":\(o.tid),\"ts\":\(rel(ts)),\"args\":{\"closed\":\"remapped\"}}"
                } else {
                    openOrder.append(k)
                }
                let name =
                    (e.kind == .dmaAlloc ? "dma_alloc" : e.kind == .dmaMap ? "dma_map" : "iommu_map")
                    + " \(Hex.prefixed(e.address, width: 16))+\(e.size)"
                let o = Open(id: nextID, name: name, tid: tid(e))
                nextID += 1
                open[k] = o
                body +=
                    ",\n{\"name\":\(q(name)),\"cat\":\"mapping\",\"ph\":\"b\",\"id\":\(o.id),\"pid\":1,\"tid\":\(o.tid),\"ts\":\(rel(ts)),\"args\":{\"address\":\"\(Hex.prefixed(e.address, width: 16))\",\"size\":\(e.size),\"direction\":\"\(e.direction.kernelName)\",\"event\":\(index)}}"
                return
            case .dmaUnmap, .dmaFree, .iommuUnmap:
                let k = (e.kind == .iommuUnmap ? "i" : "d") + key
                if let o = open.removeValue(forKey: k) {
                    body +=
                        ",\n{\"name\":\(q(o.name)),\"cat\":\"mapping\",\"ph\":\"e\",\"id\":\(o.id),\"pid\":1,\"tid\":\(o.tid),\"ts\":\(rel(ts)),\"args\":{\"event\":\(index)}}"
                    return
                }
            default:
                break
            }
            var args = "\"event\":\(index),\"address\":\"\(Hex.prefixed(e.address, width: 16))\""
            if e.size != 0 { args += ",\"size\":\(e.size)" }
            // The kind's message (or SMMUv3 event name) string field: aux for log lines and markers, aux2 for
            // guest faults (was aux, the fault reason, for those too).
            if let f = KindSchema.fields(e.kind).first(where: {
                $0.type == .string && ($0.name == "message" || $0.name == "event_name")
            }),
                let s = source.string(UInt32(truncatingIfNeeded: e.value(of: f.slot)))
            {
                args += ",\"message\":\(q(s))"
            }
            body +=
                ",\n{\"name\":\"\(e.kind.name)\",\"cat\":\"\(e.kind.isHost ? "host" : e.kind.isGuest ? "guest" : "bookkeeping")\",\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":\(tid(e)),\"ts\":\(rel(ts)),\"args\":{\(args)}}"
        }
        if header == nil { header = Self.header(trace: trace, meta: meta, origin: 0) }
        for k in openOrder {
            guard let o = open[k] else { continue }
            body +=
                ",\n{\"name\":\(q(o.name)),\"cat\":\"mapping\",\"ph\":\"e\",\"id\":\(o.id),\"pid\":1,\"tid\":\(o.tid),\"ts\":\(rel(last)),\"args\":{\"closed\":\"still mapped when the recording (or the export window) ended\"}}"
        }
        let devices = Dictionary(meta.devices.enumerated().map { ($1.name, $0 + 1) }, uniquingKeysWith: { a, _ in a })
        for f in try findings() {
            guard let o = f.first else { continue }
            let (t, overflow) = Int64(clamping: o.timestamp).addingReportingOverflow(0)
            let windowed = initialFilter.from != nil || initialFilter.to != nil
            guard !overflow, !windowed || origin == nil || (t >= origin! && t <= last) else { continue }
            body +=
                ",\n{\"name\":\(q("finding: \(f.ruleID) \(f.scenario)")),\"cat\":\"finding\",\"ph\":\"i\",\"s\":\"g\",\"pid\":1,\"tid\":\(devices[f.device] ?? 0),\"ts\":\(rel(t)),\"args\":{\"fingerprint\":\"\(f.fingerprint)\",\"severity\":\"\(f.severity.rawValue)\",\"count\":\(f.count),\"message\":\(q(f.message)),\"event\":\(o.eventIndex)}}"
        }
        try write((header ?? "") + body + "\n]}\n")
    }

    /// The document's opening: metadata, process and thread names.
    static func header(trace: String, meta: TraceMetadata, origin: Int64) -> String {
        var out =
            "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"trace\":\(q(trace)),\"tool\":\"dmatrace \(ToolInfo.version)\",\"timeOriginNs\":\"\(origin)\"},\"traceEvents\":[\n"
        out += "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{\"name\":\(q(trace))}}"
        out += ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{\"name\":\"(no device)\"}}"
        for (i, d) in meta.devices.enumerated() {
            out +=
                ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":\(i + 1),\"args\":{\"name\":\(q(d.name))}}"
        }
        return out
    }

    /// Nanoseconds as microseconds with three decimals (`12.345`), exact and locale-free.
    static func us(_ ns: Int64) -> String {
        let neg = ns < 0
        let m = ns.magnitude
        let frac = String(m % 1000)
        return (neg ? "-" : "") + String(m / 1000) + "." + String(repeating: "0", count: 3 - frac.count) + frac
    }

    /// A JSON string literal (TraceFormat's escaper).
    static func q(_ s: String) -> String { jsonQuoted(s) }
}
