import Analysis
import Replay
import TraceFormat

/// Exports a trace as Chrome / Perfetto trace-event JSON (the "JSON Array/Object Format" both the legacy
/// chrome://tracing viewer and ui.perfetto.dev open): one process for the trace, one thread per device
/// (tid 0 for events without a device); DMA-API and IOMMU mappings as complete (`X`) events from map to
/// unmap, every other event as an instant (`i`); findings as global instant events at their first
/// occurrence, so they stand out on the timeline. Timestamps are microseconds with nanosecond decimals,
/// shifted into the reference clock when the trace's clock domains carry an offset.
public enum PerfettoExport {
    /// A mapping waiting for its unmap.
    struct Open { var start: Int64; var event: Event; var index: Int }

    /// The JSON document for `source`, with `findings` marked.
    public static func render(_ source: some EventSource, trace: String, findings: [Finding]) throws -> String {
        var all = ""
        try export(source, trace: trace, findings: { findings }) { all += $0 }
        return all
    }

    /// Streams the JSON document to `write` in pieces of about 1 MiB, so memory stays bounded by the
    /// mappings open at a time, not by the trace. The trace is read once: `onEvent` sees every event as it
    /// goes (e.g. to run the DMA-API checks in the same pass), and `findings` is asked for only at the end.
    public static func export(_ source: some EventSource, trace: String, findings: () throws -> [Finding],
                              onEvent: (Int, Event) -> Void = { _, _ in },
                              write: (String) throws -> Void) throws {
        let meta = source.metadata
        var out = "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"trace\":\(q(trace)),\"tool\":\"dmatrace \(ToolInfo.version)\"},\"traceEvents\":[\n"
        out += "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{\"name\":\(q(trace))}}"
        out += ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{\"name\":\"(no device)\"}}"
        for (i, d) in meta.devices.enumerated() {
            out += ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":\(i + 1),\"args\":{\"name\":\(q(d.name))}}"
        }
        let offsets = meta.clocks.reduce(into: [UInt8: Int64]()) { $0[$1.id] = $1.offsetToReferenceNs ?? 0 }
        var open: [String: Open] = [:]
        var openOrder: [String] = []
        var last: Int64 = 0
        func tid(_ e: Event) -> Int { e.device == Event.noDevice ? 0 : Int(e.device) + 1 }
        func complete(_ o: Open, end: Int64) -> String {
            let e = o.event
            let name = e.kind == .dmaAlloc ? "dma_alloc" : e.kind == .dmaMap ? "dma_map" : "iommu_map"
            return ",\n{\"name\":\"\(name) \(hex64(e.address))+\(e.size)\",\"cat\":\"mapping\",\"ph\":\"X\",\"pid\":1,\"tid\":\(tid(e)),\"ts\":\(us(o.start)),\"dur\":\(us(max(0, end - o.start))),\"args\":{\"address\":\"\(hex64(e.address))\",\"size\":\(e.size),\"direction\":\"\(e.direction.kernelName)\",\"event\":\(o.index)}}"
        }
        try source.forEachEvent { index, e in
            onEvent(index, e)
            if out.utf8.count >= 1 << 20 {
                try write(out)
                out = ""
            }
            let (t, overflow) = Int64(clamping: e.timestamp).addingReportingOverflow(offsets[e.clock] ?? 0)
            let ts = overflow ? Int64(clamping: e.timestamp) : t
            last = max(last, ts)
            let key = "\(e.device):\(e.address)"
            switch e.kind {
            case .dmaMap, .dmaAlloc, .iommuMap:
                let k = (e.kind == .iommuMap ? "i" : "d") + key
                if open[k] == nil { openOrder.append(k) }
                open[k] = Open(start: ts, event: e, index: index)
                return
            case .dmaUnmap, .dmaFree, .iommuUnmap:
                let k = (e.kind == .iommuUnmap ? "i" : "d") + key
                if let o = open.removeValue(forKey: k) {
                    out += complete(o, end: ts)
                    return
                }
            default:
                break
            }
            var args = "\"event\":\(index),\"address\":\"\(hex64(e.address))\""
            if e.size != 0 { args += ",\"size\":\(e.size)" }
            // The kind's message (or SMMUv3 event name) string field: aux for log lines and markers, aux2 for
            // guest faults (was aux, the fault reason, for those too).
            if let f = KindSchema.fields(e.kind).first(where: { $0.type == .string && ($0.name == "message" || $0.name == "event_name") }),
                let s = source.string(UInt32(truncatingIfNeeded: e.value(of: f.slot)))
            {
                args += ",\"message\":\(q(s))"
            }
            out += ",\n{\"name\":\"\(e.kind.name)\",\"cat\":\"\(e.kind.isHost ? "host" : e.kind.isGuest ? "guest" : "bookkeeping")\",\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":\(tid(e)),\"ts\":\(us(ts)),\"args\":{\(args)}}"
        }
        for k in openOrder { if let o = open[k] { out += complete(o, end: last) } }
        let devices = Dictionary(meta.devices.enumerated().map { ($1.name, $0 + 1) }, uniquingKeysWith: { a, _ in a })
        for f in try findings() {
            guard let o = f.first else { continue }
            out += ",\n{\"name\":\(q("finding: \(f.ruleID) \(f.scenario)")),\"cat\":\"finding\",\"ph\":\"i\",\"s\":\"g\",\"pid\":1,\"tid\":\(devices[f.device] ?? 0),\"ts\":\(us(Int64(clamping: o.timestamp))),\"args\":{\"fingerprint\":\"\(f.fingerprint)\",\"severity\":\"\(f.severity.rawValue)\",\"count\":\(f.count),\"message\":\(q(f.message)),\"event\":\(o.eventIndex)}}"
        }
        out += "\n]}\n"
        try write(out)
    }

    /// Nanoseconds as microseconds with three decimals (`12.345`), exact and locale-free.
    static func us(_ ns: Int64) -> String {
        let neg = ns < 0
        let m = ns.magnitude
        let frac = String(m % 1000)
        return (neg ? "-" : "") + String(m / 1000) + "." + String(repeating: "0", count: 3 - frac.count) + frac
    }

    /// A JSON string literal.
    static func q(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
