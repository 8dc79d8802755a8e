import TraceFormat

/// Imports ftrace text: tracefs `trace` and `trace_pipe`, and `trace-cmd report` output, with or without
/// latency columns and tgid (kernel/trace/trace_output.c, trace.c print_trace_header).
///
/// Events: `dma:*` (6.12+, every variant: optional `dir=`, `dma_map_phys`, the capped `dma_map_sg` with
/// `nents=a/b ents=c/d [TRUNCATED]`, sg and sync events, alloc/free variants), `iommu:*` (pre-5.17 and 5.17+
/// map/unmap, group, attach/detach, io_page_fault), `swiotlb_bounced` (all three eras) and the
/// `intel_iommu:*` per-mapping events of 5.3–5.10. `CPU:n [LOST n EVENTS]` becomes a ``EventKind/lostEvents``
/// event; other events are counted as unknown; a line that is not an event line is reported and skipped.
///
/// The hot path parses bytes in place; it allocates only when it meets a device or event name for the
/// first time.
public struct FtraceTextImporter: Importer {
    public static let formatID = "ftrace"
    /// Every event of a line with a `[cpu]` column records that CPU.
    public static let recordsCPU = true

    public init() {}

    /// `# tracer:` headers and `cpus=` (trace-cmd report) are certain; otherwise the share of event lines.
    public static func sniff(_ head: UnsafeRawBufferPointer) -> Int {
        var events = 0
        var bare = 0
        var lines = 0
        var score = 0
        var stop = false
        var n: UInt64 = 0
        _ = IngestInput.scanLines(head, final: false, line: &n) { raw, _ in
            if stop { return }
            let v = LineView(raw)
            if lines == 0 && (v.hasPrefix("# tracer:", at: 0) || v.hasPrefix("cpus=", at: 0)) { score = 95 }
            if v.count == 0 { return }
            if v.hasControlBytes() { stop = true; score = 0; lines = 0; return }
            if v[0] != 0x23 { lines += 1 }
            var body = 0
            if locateEvent(v, timestamp: nil, nameStart: nil, nameEnd: &body) {
                events += 1
            } else if v[0] != 0x23 && locateBareEvent(v, nameStart: nil, nameEnd: &body) {
                bare += 1
            }
            if lines >= 200 { stop = true }
        }
        if score > 0 { return score }
        guard lines > 0 else { return 0 }
        if events == 0 && bare * 2 >= lines { return 45 }
        return events * 2 >= lines ? 80 : (events > 0 ? 30 : 0)
    }

    /// Every event name the importer knows, for lines that are event bodies alone.
    static let knownNames: Set<String> = Set(FtraceEventName.allCases.map(\.name))

    /// An event body without the `comm-pid [cpu] seconds:` prefix, as pasted from a trace or printed by
    /// `perf script`: `name: body` or `system:name: body` with a name this importer knows. The name is the
    /// token before the first `: `; a `system:` before it is skipped.
    static func locateBareEvent(_ v: LineView, nameStart: UnsafeMutablePointer<Int>?, nameEnd: inout Int) -> Bool {
        let i = v.skipSpaces(0)
        var c = i
        while c < v.count && v[c] != 0x20 && v[c] != 0x09 && !(v[c] == 0x3A && (c + 1 == v.count || v[c + 1] == 0x20)) {
            c += 1
        }
        guard c > i, c < v.count, v[c] == 0x3A else { return false }
        var s = i
        var k = i
        while k < c {
            if v[k] == 0x3A { s = k + 1 }
            k += 1
        }
        guard c > s, knownNames.contains(v.string(s, c)) else { return false }
        nameStart?.pointee = s
        nameEnd = c
        return true
    }

    public mutating func run(
        _ input: IngestInput, source: UInt16, clock: UInt8,
        into sink: inout some EventSink, diagnostics: inout IngestDiagnostics
    ) throws(IngestError) {
        var parser = FtraceLineParser(path: input.path, source: source, clock: clock)
        input.forEachLine { raw, line in
            parser.parse(LineView(raw), line: line, sink: &sink)
        }
        parser.finish(into: &diagnostics)
        if let n = parser.guestCPUs { sink.metadata.capture.noteGuestCPUs(n) }
        try input.checkReadError()
        if let e = parser.sinkError { throw .unreadable(path: input.path, reason: "cannot store events: \(e)") }
        if parser.eventLines == 0 && parser.malformed > 0 {
            let first = diagnostics.problems.first { $0.file == input.path }.map { " (first: \($0))" } ?? ""
            throw .badFormat(
                path: input.path, offset: 0,
                reason: "no ftrace event line found; \(parser.malformed) malformed lines\(first)")
        }
    }

    /// Finds the event name of an ftrace line: after the `[cpu]` column, skipping latency/tgid columns, a
    /// `seconds.micro:` timestamp, then `name:`. Returns false when the line has no such shape.
    @inline(__always)
    static func locateEvent(
        _ v: LineView, timestamp: UnsafeMutablePointer<UInt64>?, nameStart: UnsafeMutablePointer<Int>?,
        nameEnd: inout Int, cpu: UnsafeMutablePointer<UInt32>? = nil
    ) -> Bool {
        // The CPU column: `[` digits `]`. The comm before it may hold almost anything, so look for the
        // first bracket that has this exact shape.
        var i = 0
        var close = -1
        while i < v.count {
            guard let hit = Platform.firstOffset(of: 0x5B, in: v.base + i, count: v.count - i) else { return false }
            let b = i + hit
            var j = b + 1
            // The digits' value is kept as they are crossed (one pass; wrapping, as the column is short).
            var n: UInt32 = 0
            while j < v.count && v[j] &- 0x30 <= 9 {
                n = n &* 10 &+ UInt32(v[j] &- 0x30)
                j += 1
            }
            if j > b + 1 && j < v.count && v[j] == 0x5D && b > 0 {
                close = j
                cpu?.pointee = n
                break
            }
            i = b + 1
        }
        if close < 0 { return false }
        // Up to three columns (flags, ...) before the timestamp token, which ends with ':'.
        i = close + 1
        var ts: UInt64 = 0
        var found = false
        for _ in 0..<4 {
            i = v.skipSpaces(i)
            // The timestamp token: seconds, then ':' ending the token. Parsed where it starts, without first
            // looking for the token's end (seconds only cross digits and '.', so it ends at that ':').
            if i < v.count && v[i] &- 0x30 <= 9 {
                var k = i
                if let t = v.seconds(&k), k < v.count, v[k] == 0x3A,
                    k + 1 == v.count || v[k + 1] == 0x20 || v[k + 1] == 0x09
                {
                    ts = t
                    found = true
                    i = k + 1
                    break
                }
            }
            let e = v.tokenEnd(i)
            if e == i { return false }
            i = e
        }
        if !found { return false }
        i = v.skipSpaces(i)
        let s = i
        i = v.firstOf(0x3A, 0x20, from: i)
        if i == s || i >= v.count || v[i] != 0x3A { return false }
        timestamp?.pointee = ts
        nameStart?.pointee = s
        nameEnd = i
        return true
    }
}

/// The event names the ftrace importer knows (the raw value indexes the per-name counters).
enum FtraceEventName: Int, CaseIterable {
    case dmaMapPage, dmaMapResource, dmaMapPhys, dmaUnmapPage, dmaUnmapResource, dmaUnmapPhys
    case dmaAlloc, dmaAllocPages, dmaAllocSgt, dmaAllocSgtErr, dmaFree, dmaFreePages, dmaFreeSgt
    case dmaMapSg, dmaMapSgErr, dmaUnmapSg
    case dmaSyncSingleForCPU, dmaSyncSingleForDevice, dmaSyncSgForCPU, dmaSyncSgForDevice
    case iommuMap, iommuUnmap, addDeviceToGroup, removeDeviceFromGroup, attachDeviceToDomain
    case detachDeviceFromDomain, ioPageFault
    case swiotlbBounced
    case intelMapSingle, intelMapSg, intelBounceMapSingle, intelBounceMapSg, intelUnmapSingle, intelUnmapSg
    case intelBounceUnmapSingle
    // Recognised, deliberately not imported (no per-mapping information).
    case qiSubmit, prqReport, cacheTagAssign, cacheTagUnassign, cacheTagFlushAll, cacheTagFlushRange
    case cacheTagFlushRangeNp

    var name: String {
        switch self {
        case .dmaMapPage: "dma_map_page"
        case .dmaMapResource: "dma_map_resource"
        case .dmaMapPhys: "dma_map_phys"
        case .dmaUnmapPage: "dma_unmap_page"
        case .dmaUnmapResource: "dma_unmap_resource"
        case .dmaUnmapPhys: "dma_unmap_phys"
        case .dmaAlloc: "dma_alloc"
        case .dmaAllocPages: "dma_alloc_pages"
        case .dmaAllocSgt: "dma_alloc_sgt"
        case .dmaAllocSgtErr: "dma_alloc_sgt_err"
        case .dmaFree: "dma_free"
        case .dmaFreePages: "dma_free_pages"
        case .dmaFreeSgt: "dma_free_sgt"
        case .dmaMapSg: "dma_map_sg"
        case .dmaMapSgErr: "dma_map_sg_err"
        case .dmaUnmapSg: "dma_unmap_sg"
        case .dmaSyncSingleForCPU: "dma_sync_single_for_cpu"
        case .dmaSyncSingleForDevice: "dma_sync_single_for_device"
        case .dmaSyncSgForCPU: "dma_sync_sg_for_cpu"
        case .dmaSyncSgForDevice: "dma_sync_sg_for_device"
        case .iommuMap: "map"
        case .iommuUnmap: "unmap"
        case .addDeviceToGroup: "add_device_to_group"
        case .removeDeviceFromGroup: "remove_device_from_group"
        case .attachDeviceToDomain: "attach_device_to_domain"
        case .detachDeviceFromDomain: "detach_device_from_domain"
        case .ioPageFault: "io_page_fault"
        case .swiotlbBounced: "swiotlb_bounced"
        case .intelMapSingle: "map_single"
        case .intelMapSg: "map_sg"
        case .intelBounceMapSingle: "bounce_map_single"
        case .intelBounceMapSg: "bounce_map_sg"
        case .intelUnmapSingle: "unmap_single"
        case .intelUnmapSg: "unmap_sg"
        case .intelBounceUnmapSingle: "bounce_unmap_single"
        case .qiSubmit: "qi_submit"
        case .prqReport: "prq_report"
        case .cacheTagAssign: "cache_tag_assign"
        case .cacheTagUnassign: "cache_tag_unassign"
        case .cacheTagFlushAll: "cache_tag_flush_all"
        case .cacheTagFlushRange: "cache_tag_flush_range"
        case .cacheTagFlushRangeNp: "cache_tag_flush_range_np"
        }
    }

    var isIgnored: Bool { rawValue >= FtraceEventName.qiSubmit.rawValue }
}

/// The per-input state of the ftrace text parser.
struct FtraceLineParser {
    let path: String
    let source: UInt16
    let clock: UInt8

    private var names = ByteNameCache()
    private var devices = ByteNameCache()
    private var unknownNames = ByteNameCache()
    private var unknownCounts: [Int] = []
    /// Lines per known event name, by raw value. Inline storage: an array counted into on every line checked its
    /// buffer's uniqueness each time (a runtime call, ~6 instructions a line).
    private var counts = InlineArray<64, Int>(repeating: 0)
    private var problems = IngestDiagnostics()
    private var comments = 0
    private(set) var eventLines = 0
    /// The `[cpu]` column of the current line, `.max` when it has none: every event of the line records it
    /// (``Event/cpu``; the IOVA allocator's caches are per CPU), iommu map/unmap also in their `cpu` slot.
    var lineCPU: UInt32 = .max
    /// ``lineCPU`` + 1 in bits 48–63 (``Event/provenance``), 0 when the line has no CPU column.
    private var lineCPUBits: UInt64 = 0
    /// The CPU count the input states (`#P:N` of tracefs' `trace` header, `cpus=N` of `trace-cmd report`).
    private var statedCPUs: Int?
    /// The highest `[cpu]` column seen plus one (0: none).
    private var cpusSeen: UInt32 = 0
    /// How many CPUs the guest had: the stated count, or more if a line names a higher CPU.
    var guestCPUs: Int? {
        let seen = cpusSeen > 0 ? Int(cpusSeen) : nil
        guard let n = statedCPUs else { return seen }
        return max(n, seen ?? 0)
    }
    private(set) var malformed = 0
    private var unknownOverflow = 0

    init(path: String, source: UInt16, clock: UInt8) {
        self.path = path
        self.source = source
        self.clock = clock
        precondition(FtraceEventName.allCases.count <= counts.count, "FtraceLineParser.counts is too short")
        // Known names are cached up front (ids = FtraceEventName raw values).
        for e in FtraceEventName.allCases {
            var bytes = Array(e.name.utf8)
            bytes.withUnsafeMutableBufferPointer { b in
                names.insert(
                    LineView(base: UnsafePointer(b.baseAddress!), count: b.count), 0, b.count, id: UInt32(e.rawValue))
            }
        }
    }

    /// Adds this input's counts to `d`; called once at the end.
    mutating func finish(into d: inout IngestDiagnostics) {
        for e in FtraceEventName.allCases where counts[e.rawValue] > 0 {
            if e.isIgnored {
                d.ignored[e.name, default: 0] += counts[e.rawValue]
            } else {
                d.understood[e.name, default: 0] += counts[e.rawValue]
            }
        }
        for (name, id) in unknownNames.entryNames { d.unknown[name, default: 0] += unknownCounts[Int(id)] }
        if unknownOverflow > 0 { d.unknown["(other names)", default: 0] += unknownOverflow }
        d.comments += comments
        d.merge(problems)
    }

    /// The first error of the sink (a full disk under the .dmat writer); ingest stops reporting it.
    private(set) var sinkError: String?

    @inline(__always)
    private mutating func put(_ sink: inout some EventSink, _ e: Event) {
        do { try sink.append(e) } catch { if sinkError == nil { sinkError = "\(error)" } }
    }

    @inline(never)
    private mutating func bad(_ line: UInt64, _ message: @autoclosure () -> String) {
        malformed += 1
        // The message is built only while problems are still being kept.
        if problems.problems.count >= problems.maxProblems {
            problems.skipped += 1
            problems.problemsNotStored += 1
            return
        }
        problems.skip(IngestDiagnostics.Problem(file: path, position: line, message: message()))
    }

    @inline(__always)
    private mutating func device(_ v: LineView, _ a: Int, _ b: Int, sink: inout some EventSink) -> UInt16 {
        if let id = devices.lookup(v, a, b) { return UInt16(id) }
        return newDevice(v, a, b, sink: &sink)
    }

    /// A device met for the first time. Kept out of ``device(_:_:_:sink:)`` (never inlined) so that the lookup,
    /// run for nearly every line, does not spill registers for the String and DeviceInfo of this rare path.
    @inline(never)
    private mutating func newDevice(_ v: LineView, _ a: Int, _ b: Int, sink: inout some EventSink) -> UInt16 {
        let id = sink.device(DeviceInfo(name: v.string(a, b)))
        devices.insert(v, a, b, id: UInt32(id))
        return id
    }

    private func event(
        _ kind: EventKind, _ ts: UInt64, _ line: UInt64, device: UInt16 = Event.noDevice,
        direction: DMADirection = .bidirectional, flags: EventFlags = [], detail: UInt8 = 0,
        address: UInt64 = 0, address2: UInt64 = 0, size: UInt64 = 0, aux: UInt32 = 0, aux2: UInt32 = 0
    ) -> Event {
        var e = Event(
            kind: kind, timestamp: ts, device: device, direction: direction, flags: flags, detail: detail,
            address: address, address2: address2, size: size, aux: aux, aux2: aux2, clock: clock,
            source: source, position: line)
        // Made once per line (``Event/cpuBits(_:)``): passing `cpu:` to the initialiser made parsing 20% slower
        // (0.33 -> 0.40 s on 423 MB, `ingest --dry-run`).
        e.provenance |= lineCPUBits
        return e
    }

    mutating func parse(_ v: LineView, line: UInt64, sink: inout some EventSink) {
        lineCPU = .max  // not recorded (bare event lines and header lines have no CPU column)
        lineCPUBits = 0
        var i = v.skipSpaces(0)
        if i == v.count { comments += 1; return }
        let c0 = v[i]
        if c0 == 0x23 {  // '#'
            header(v, i, line: line, sink: &sink)
            return
        }
        if c0 == 0x43 && v.hasPrefix("CPU", at: i) {  // CPU:n [LOST n EVENTS], "CPU 0 is empty"
            lostLine(v, i, line: line, sink: &sink)
            return
        }
        if c0 == 0x63 && v.hasPrefix("cpus=", at: i) {
            var j = i + 5
            if let n = v.dec(&j), n > 0, n <= 8192 { statedCPUs = Int(n) }
            comments += 1
            return
        }
        if c0 == 0x76 && v.hasPrefix("version = ", at: i) { comments += 1; return }
        var ts: UInt64 = 0
        var ns = 0
        var ne = 0
        guard
            FtraceTextImporter.locateEvent(v, timestamp: &ts, nameStart: &ns, nameEnd: &ne, cpu: &lineCPU)
                || FtraceTextImporter.locateBareEvent(v, nameStart: &ns, nameEnd: &ne)
        else {
            if v.hasControlBytes() {
                bad(line, "binary data in a text input")
            } else {
                bad(line, "not an ftrace event line (expected 'comm-pid [cpu] seconds.micro: event: ...'): \(v.text())")
            }
            return
        }
        eventLines += 1
        if lineCPU < 8192 && lineCPU >= cpusSeen { cpusSeen = lineCPU + 1 }
        if lineCPU < 0xFFFF { lineCPUBits = Event.cpuBits(UInt16(lineCPU)) }
        i = v.skipSpaces(ne + 1)
        guard let id = names.lookup(v, ns, ne) else {
            countUnknown(v, ns, ne)
            return
        }
        let name = FtraceEventName(rawValue: Int(id))!
        if name.isIgnored { counts[name.rawValue] += 1; return }
        let ok: Bool
        switch name {
        case .dmaMapPage, .dmaMapResource, .dmaMapPhys:
            ok = dmaMap(v, i, name, ts, line, &sink)
        case .dmaUnmapPage, .dmaUnmapResource, .dmaUnmapPhys:
            ok = dmaUnmap(v, i, name, ts, line, &sink)
        case .dmaAlloc, .dmaAllocPages, .dmaAllocSgt, .dmaAllocSgtErr:
            ok = dmaAlloc(v, i, name, ts, line, &sink)
        case .dmaFree, .dmaFreePages, .dmaFreeSgt:
            ok = dmaFree(v, i, name, ts, line, &sink)
        case .dmaMapSg, .dmaSyncSgForCPU, .dmaSyncSgForDevice:
            ok = dmaSG(v, i, name, ts, line, &sink)
        case .dmaMapSgErr:
            ok = dmaMapSGErr(v, i, ts, line, &sink)
        case .dmaUnmapSg:
            ok = dmaUnmapSG(v, i, ts, line, &sink)
        case .dmaSyncSingleForCPU, .dmaSyncSingleForDevice:
            ok = dmaSync(v, i, name, ts, line, &sink)
        case .iommuMap, .iommuUnmap:
            ok = iommuMapUnmap(v, i, name == .iommuMap, ts, line, &sink)
        case .addDeviceToGroup, .removeDeviceFromGroup:
            ok = iommuGroup(v, i, name == .addDeviceToGroup, ts, line, &sink)
        case .attachDeviceToDomain, .detachDeviceFromDomain:
            ok = iommuAttach(v, i, name == .attachDeviceToDomain, ts, line, &sink)
        case .ioPageFault:
            ok = ioPageFault(v, i, ts, line, &sink)
        case .swiotlbBounced:
            ok = swiotlb(v, i, ts, line, &sink)
        case .intelMapSingle, .intelMapSg, .intelBounceMapSingle, .intelBounceMapSg, .intelUnmapSingle,
            .intelUnmapSg, .intelBounceUnmapSingle:
            ok = intel(v, i, name, ts, line, &sink)
        default:
            ok = false
        }
        if ok {
            counts[name.rawValue] += 1
        } else {
            bad(line, "malformed \(name.name) event: \(v.text())")
        }
    }

    /// Counts an event name the importer does not know (never inlined: rare, kept off the hot path).
    @inline(never)
    private mutating func countUnknown(_ v: LineView, _ ns: Int, _ ne: Int) {
        if let u = unknownNames.lookup(v, ns, ne) {
            unknownCounts[Int(u)] += 1
        } else if unknownNames.count < 1024 {
            unknownNames.insert(v, ns, ne, id: UInt32(unknownCounts.count))
            unknownCounts.append(1)
        } else {
            unknownOverflow += 1
        }
    }

    // MARK: Headers and lost events

    @inline(never)
    private mutating func header(_ v: LineView, _ i: Int, line: UInt64, sink: inout some EventSink) {
        comments += 1
        // `# entries-in-buffer/entries-written: 1092/1092   #P:2`: more written than kept = overwritten; `#P:` is
        // the number of CPUs (`print_event_info()`, kernel/trace/trace.c).
        guard let k = v.find("entries-in-buffer/entries-written: ", from: v.skipSpaces(i + 1)) else { return }
        if let p = v.search("#P:", from: k) {
            var j = p + 3
            if let n = v.dec(&j), n > 0, n <= 8192 { statedCPUs = Int(n) }
        }
        var j = k
        guard let kept = v.dec(&j), j < v.count, v[j] == 0x2F else { return }
        j += 1
        guard let written = v.dec(&j), written > kept else { return }
        let missing = written - kept
        problems.addLost(missing)
        put(
            &sink,
            event(
                .lostEvents, 0, line, aux: UInt32(clamping: missing), aux2: Event.noString))
    }

    @inline(never)
    private mutating func lostLine(_ v: LineView, _ i: Int, line: UInt64, sink: inout some EventSink) {
        var j = i + 3
        if j < v.count && v[j] == 0x3A { j += 1 }
        j = v.skipSpaces(j)
        guard let cpu = v.dec(&j) else { bad(line, "malformed CPU line: \(v.text())"); return }
        if let k = v.search("LOST ", from: j) {
            var m = k + 5
            let n = v.dec(&m) ?? 0
            problems.addLost(n)
            put(&sink, event(.lostEvents, 0, line, aux: UInt32(clamping: n), aux2: UInt32(clamping: cpu)))
            comments += 1
            return
        }
        if let k = v.search("EVENTS DROPPED", from: j) {
            // trace-cmd: `CPU:0 [123 EVENTS DROPPED]`
            var m = j
            while m < k && v[m] &- 0x30 > 9 { m += 1 }
            let n = v.dec(&m) ?? 0
            problems.addLost(n)
            put(&sink, event(.lostEvents, 0, line, aux: UInt32(clamping: n), aux2: UInt32(clamping: cpu)))
            comments += 1
            return
        }
        comments += 1  // "CPU 0 is empty" and similar
    }

    // MARK: Field helpers

    /// The first token of a dma:* body: the device name.
    @inline(__always)
    private mutating func leadingDevice(_ v: LineView, _ i: inout Int, _ sink: inout some EventSink) -> UInt16? {
        let e = v.tokenEnd(i)
        guard e > i else { return nil }
        let d = device(v, i, e, sink: &sink)
        i = e
        return d
    }

    /// Optional `dir=NAME`; absent (6.12 alloc/free) = bidirectional.
    // `@_transparent` as hexField below: once the device lookup was inlined, `@inline(__always)` left this an
    // outlined call (inlined: 274.2 -> 272.2 M instructions, `ingest --dry-run` of a 20 MB gen_ftrace file).
    @_transparent
    private static func direction(_ v: LineView, _ i: inout Int) -> DMADirection? {
        let j = v.skipSpaces(i)
        guard v.hasPrefix("dir=", at: j) else { return .bidirectional }
        let s = j + 4
        let e = v.tokenEnd(s)
        i = e
        var a = s
        if v.hasPrefix("DMA_", at: a) { a += 4 }
        if v.equals(a, e, "TO_DEVICE") { return .toDevice }
        if v.equals(a, e, "FROM_DEVICE") { return .fromDevice }
        if v.equals(a, e, "BIDIRECTIONAL") { return .bidirectional }
        if v.equals(a, e, "NONE") { return DMADirection.none }
        var h = s
        if let x = v.hex(&h), h == e, x <= 3 { return DMADirection(rawValue: UInt8(x)) }
        return nil
    }

    // `@_transparent`, not `@inline(__always)`: with the latter both helpers stayed outlined calls (one to three
    // per line) in every event parser; inlined, `ingest --dry-run` of a 20 MB gen_ftrace file ran ~13.5 M fewer
    // instructions (callgrind).
    @_transparent
    private static func hexField(_ v: LineView, _ key: StaticString, _ i: inout Int) -> UInt64? {
        guard var j = v.find(key, from: i), let x = v.hex(&j) else { return nil }
        i = j
        return x
    }

    @_transparent
    private static func decField(_ v: LineView, _ key: StaticString, _ i: inout Int) -> UInt64? {
        guard var j = v.find(key, from: i), let x = v.dec(&j) else { return nil }
        i = j
        return x
    }

    /// `attrs=A|B` up to the end of the token (empty allowed).
    @inline(__always)
    private static func attrs(_ v: LineView, _ i: inout Int) -> DMAAttributes? {
        guard let j = v.find("attrs=", from: i) else { return nil }
        let e = v.tokenEnd(j)
        i = e
        // Most maps have none (`attrs=` then the end of the line or a blank).
        return e == j ? [] : DMAAttributes.parse(v, j, e)
    }

    // MARK: dma:*

    private mutating func dmaMap(
        _ v: LineView, _ i0: Int, _ name: FtraceEventName, _ ts: UInt64, _ line: UInt64,
        _ sink: inout some EventSink
    ) -> Bool {
        var i = i0
        guard let dev = leadingDevice(v, &i, &sink), let dir = Self.direction(v, &i),
            let dma = Self.hexField(v, "dma_addr=", &i), let size = Self.decField(v, "size=", &i),
            let phys = Self.hexField(v, "phys_addr=", &i), let at = Self.attrs(v, &i)
        else { return false }
        let api: MapAPI = name == .dmaMapPage ? .page : (name == .dmaMapPhys ? .phys : .resource)
        put(
            &sink,
            event(
                .dmaMap, ts, line, device: dev, direction: dir, detail: api.rawValue, address: dma, address2: phys,
                size: size, aux: at.rawValue))
        return true
    }

    private mutating func dmaUnmap(
        _ v: LineView, _ i0: Int, _ name: FtraceEventName, _ ts: UInt64, _ line: UInt64,
        _ sink: inout some EventSink
    ) -> Bool {
        var i = i0
        guard let dev = leadingDevice(v, &i, &sink), let dir = Self.direction(v, &i),
            let dma = Self.hexField(v, "dma_addr=", &i), let size = Self.decField(v, "size=", &i),
            let at = Self.attrs(v, &i)
        else { return false }
        let api: MapAPI = name == .dmaUnmapPage ? .page : (name == .dmaUnmapPhys ? .phys : .resource)
        put(
            &sink,
            event(
                .dmaUnmap, ts, line, device: dev, direction: dir, detail: api.rawValue, address: dma, size: size,
                aux: at.rawValue))
        return true
    }

    private mutating func dmaAlloc(
        _ v: LineView, _ i0: Int, _ name: FtraceEventName, _ ts: UInt64, _ line: UInt64,
        _ sink: inout some EventSink
    ) -> Bool {
        var i = i0
        guard let dev = leadingDevice(v, &i, &sink), let dir = Self.direction(v, &i),
            let dma = Self.hexField(v, "dma_addr=", &i), let size = Self.decField(v, "size=", &i)
        else { return false }
        // 6.12+: virt_addr=%p; 6.12-rc: phys_addr=%llx; dma_alloc_sgt: phys_addrs={...} (no CPU address).
        var cpu: UInt64 = 0
        var j = i
        if let x = Self.hexField(v, "virt_addr=", &j) {
            cpu = x; i = j
        } else if let x = Self.hexField(v, "phys_addr=", &j) {
            cpu = x
            i = j
        } else if let k = v.find("phys_addrs=", from: i) {
            i = v.tokenEnd(k)
        } else {
            return false
        }
        guard let fk = v.find("flags=", from: i) else { return false }
        let fe = v.tokenEnd(fk)
        let gfp = GFPFlags.parse(v, fk, fe)
        i = fe
        guard let at = Self.attrs(v, &i) else { return false }
        let api: MapAPI = name == .dmaAllocPages ? .pages : (name == .dmaAlloc ? .coherent : .sgt)
        if name == .dmaAllocSgtErr {
            put(
                &sink,
                event(
                    .dmaMapError, ts, line, device: dev, direction: dir, flags: .error, detail: api.rawValue,
                    address: dma, size: size))
        } else {
            put(
                &sink,
                event(
                    .dmaAlloc, ts, line, device: dev, direction: dir, detail: api.rawValue, address: dma,
                    address2: cpu, size: size, aux: gfp.rawValue, aux2: at.rawValue))
        }
        return true
    }

    private mutating func dmaFree(
        _ v: LineView, _ i0: Int, _ name: FtraceEventName, _ ts: UInt64, _ line: UInt64,
        _ sink: inout some EventSink
    ) -> Bool {
        var i = i0
        guard let dev = leadingDevice(v, &i, &sink), let dir = Self.direction(v, &i),
            let dma = Self.hexField(v, "dma_addr=", &i), let size = Self.decField(v, "size=", &i)
        else { return false }
        var cpu: UInt64 = 0
        var at: DMAAttributes = []
        if name == .dmaFreeSgt {
            guard v.find("phys_addrs=", from: i) != nil else { return false }
        } else {
            var j = i
            if let x = Self.hexField(v, "virt_addr=", &j) {
                cpu = x; i = j
            } else if let x = Self.hexField(v, "phys_addr=", &j) {
                cpu = x
                i = j
            } else {
                return false
            }
            guard let a = Self.attrs(v, &i) else { return false }
            at = a
        }
        let api: MapAPI = name == .dmaFreePages ? .pages : (name == .dmaFree ? .coherent : .sgt)
        put(
            &sink,
            event(
                .dmaFree, ts, line, device: dev, direction: dir, detail: api.rawValue, address: dma, address2: cpu,
                size: size, aux2: at.rawValue))
        return true
    }

    /// `{0x1,0x2}` starting at `i` (just after `key=`): returns the index after `{`, or nil.
    @inline(__always)
    private static func arrayStart(_ v: LineView, _ key: StaticString, from: Int) -> Int? {
        guard let k = v.find(key, from: from), k < v.count, v[k] == 0x7B else { return nil }
        return k + 1
    }

    /// Next element of an array cursor (`0x..` then `,` or `}`); nil at `}` or on garbage.
    @inline(__always)
    private static func nextElement(_ v: LineView, _ c: inout Int) -> UInt64? {
        guard c < v.count, v[c] != 0x7D else { return nil }
        guard let x = v.hex(&c) else { return nil }
        if c < v.count && v[c] == 0x2C { c += 1 }
        return x
    }

    private static func arrayCount(_ v: LineView, _ start: Int) -> Int? {
        var c = start
        var n = 0
        while c < v.count && v[c] != 0x7D {
            guard v.hex(&c) != nil else { return nil }
            n += 1
            if c < v.count && v[c] == 0x2C { c += 1 }
        }
        return c < v.count ? n : nil
    }

    /// dma_map_sg (plain and capped), dma_sync_sg_for_cpu/device: one event per DMA segment.
    private mutating func dmaSG(
        _ v: LineView, _ i0: Int, _ name: FtraceEventName, _ ts: UInt64, _ line: UInt64,
        _ sink: inout some EventSink
    ) -> Bool {
        var i = i0
        guard let dev = leadingDevice(v, &i, &sink), let dir = Self.direction(v, &i) else { return false }
        // Capped form: `nents=a/b ents=c/d[ [TRUNCATED]]`.
        var truncated = false
        var kept: UInt64 = 0
        var full: UInt64 = 0
        if var k = v.find("nents=", from: i) {
            guard v.dec(&k) != nil, k < v.count, v[k] == 0x2F else { return false }
            k += 1
            guard v.dec(&k) != nil, var e = v.find("ents=", from: k), let c = v.dec(&e), e < v.count, v[e] == 0x2F
            else { return false }
            e += 1
            guard let d = v.dec(&e) else { return false }
            kept = c
            full = d
            truncated = c < d || v.hasPrefix(" [TRUNCATED]", at: e)
            i = e
        }
        guard let da = Self.arrayStart(v, "dma_addrs=", from: i), let sz = Self.arrayStart(v, "sizes=", from: da) else {
            return false
        }
        var dc = da
        var sc = sz
        var pc = -1
        var at: DMAAttributes = []
        let isMap = name == .dmaMapSg
        if isMap {
            guard let p = Self.arrayStart(v, "phys_addrs=", from: sz) else { return false }
            pc = p
            var j = p
            guard let a = Self.attrs(v, &j) else { return false }
            at = a
        }
        // Validate the arrays first so that a malformed line produces no partial events.
        guard let nd = Self.arrayCount(v, dc), let ns = Self.arrayCount(v, sc), nd == ns else { return false }
        if pc >= 0 && Self.arrayCount(v, pc) == nil { return false }
        var flags: EventFlags = []
        if truncated { flags.insert(.truncated) }
        var index: UInt32 = 0
        while let dma = Self.nextElement(v, &dc), let size = Self.nextElement(v, &sc) {
            if isMap {
                let phys = Self.nextElement(v, &pc) ?? 0
                put(
                    &sink,
                    event(
                        .dmaMap, ts, line, device: dev, direction: dir, flags: flags, detail: MapAPI.sg.rawValue,
                        address: dma, address2: phys, size: size, aux: at.rawValue, aux2: index))
            } else {
                let target: SyncTarget = name == .dmaSyncSgForCPU ? .forCPU : .forDevice
                put(
                    &sink,
                    event(
                        .dmaSync, ts, line, device: dev, direction: dir, detail: target.rawValue, address: dma,
                        size: size, aux2: index))
            }
            index &+= 1
        }
        if truncated {
            put(
                &sink,
                event(
                    .truncatedList, ts, line, device: dev, direction: dir, flags: .truncated,
                    aux: UInt32(clamping: kept), aux2: UInt32(clamping: full)))
        }
        return true
    }

    private mutating func dmaMapSGErr(
        _ v: LineView, _ i0: Int, _ ts: UInt64, _ line: UInt64, _ sink: inout some EventSink
    ) -> Bool {
        var i = i0
        guard let dev = leadingDevice(v, &i, &sink), let dir = Self.direction(v, &i),
            var c = Self.arrayStart(v, "dma_addrs=", from: i), Self.arrayCount(v, c) != nil
        else { return false }
        let first = Self.nextElement(v, &c) ?? 0
        guard var k = v.find("err=", from: c), let err = v.signedDec(&k) else { return false }
        i = k
        guard let at = Self.attrs(v, &i) else { return false }
        _ = at
        put(
            &sink,
            event(
                .dmaMapError, ts, line, device: dev, direction: dir, flags: .error, detail: MapAPI.sg.rawValue,
                address: first, aux: UInt32(truncatingIfNeeded: err)))
        return true
    }

    private mutating func dmaUnmapSG(
        _ v: LineView, _ i0: Int, _ ts: UInt64, _ line: UInt64, _ sink: inout some EventSink
    ) -> Bool {
        var i = i0
        guard let dev = leadingDevice(v, &i, &sink), let dir = Self.direction(v, &i),
            var c = Self.arrayStart(v, "phys_addrs=", from: i), Self.arrayCount(v, c) != nil
        else { return false }
        var j = c
        guard let at = Self.attrs(v, &j) else { return false }
        var index: UInt32 = 0
        while let phys = Self.nextElement(v, &c) {
            put(
                &sink,
                event(
                    .dmaUnmap, ts, line, device: dev, direction: dir, detail: MapAPI.sg.rawValue, address2: phys,
                    aux: at.rawValue, aux2: index))
            index &+= 1
        }
        return true
    }

    private mutating func dmaSync(
        _ v: LineView, _ i0: Int, _ name: FtraceEventName, _ ts: UInt64, _ line: UInt64,
        _ sink: inout some EventSink
    ) -> Bool {
        var i = i0
        guard let dev = leadingDevice(v, &i, &sink), let dir = Self.direction(v, &i),
            let dma = Self.hexField(v, "dma_addr=", &i), let size = Self.decField(v, "size=", &i)
        else { return false }
        let target: SyncTarget = name == .dmaSyncSingleForCPU ? .forCPU : .forDevice
        put(
            &sink,
            event(
                .dmaSync, ts, line, device: dev, direction: dir, detail: target.rawValue, address: dma, size: size))
        return true
    }

    // MARK: iommu:*

    private mutating func iommuMapUnmap(
        _ v: LineView, _ i0: Int, _ isMap: Bool, _ ts: UInt64, _ line: UInt64, _ sink: inout some EventSink
    ) -> Bool {
        // "IOMMU: iova=..." (every kernel's format): past the "IOMMU: " token, find() meets the key at once instead
        // of scanning for it (a key cannot start inside that token, so the result is the same).
        let from = v.hasPrefix("IOMMU: ", at: i0) ? i0 + 7 : i0
        guard var i = v.find("iova=", from: from), let iova = v.hex(&i) else { return false }
        // 5.17+: `iova=0x.. - 0x..`; the end is implied by size.
        let j = v.skipSpaces(i)
        if j < v.count && v[j] == 0x2D {
            var k = v.skipSpaces(j + 1)
            guard v.hex(&k) != nil else { return false }
            i = k
        }
        if isMap {
            guard let paddr = Self.hexField(v, "paddr=", &i), let size = Self.decField(v, "size=", &i) else {
                return false
            }
            put(&sink, event(.iommuMap, ts, line, address: iova, address2: paddr, size: size, aux2: lineCPU &+ 1))
        } else {
            guard let size = Self.decField(v, "size=", &i), let unmapped = Self.decField(v, "unmapped_size=", &i) else {
                return false
            }
            put(&sink, event(.iommuUnmap, ts, line, address: iova, address2: unmapped, size: size, aux2: lineCPU &+ 1))
        }
        return true
    }

    private mutating func iommuGroup(
        _ v: LineView, _ i0: Int, _ add: Bool, _ ts: UInt64, _ line: UInt64, _ sink: inout some EventSink
    ) -> Bool {
        guard var g = v.find("groupID=", from: i0), let group = v.signedDec(&g),
            let d = v.find("device=", from: g)
        else { return false }
        let e = v.tokenEnd(d)
        guard e > d else { return false }
        let dev = device(v, d, e, sink: &sink)
        if add {
            var info = DeviceInfo(name: v.string(d, e))
            info.iommuGroup = Int(group)
            _ = sink.device(info)
        }
        put(
            &sink,
            event(
                add ? .iommuGroupAdd : .iommuGroupRemove, ts, line, device: dev, aux: UInt32(truncatingIfNeeded: group))
        )
        return true
    }

    private mutating func iommuAttach(
        _ v: LineView, _ i0: Int, _ attach: Bool, _ ts: UInt64, _ line: UInt64, _ sink: inout some EventSink
    ) -> Bool {
        guard let d = v.find("device=", from: i0) else { return false }
        let e = v.tokenEnd(d)
        guard e > d else { return false }
        let dev = device(v, d, e, sink: &sink)
        put(&sink, event(attach ? .iommuAttach : .iommuDetach, ts, line, device: dev))
        return true
    }

    private mutating func ioPageFault(
        _ v: LineView, _ i0: Int, _ ts: UInt64, _ line: UInt64, _ sink: inout some EventSink
    ) -> Bool {
        // "IOMMU:%s %s iova=0x%016llx flags=0x%04x" (driver right after the colon).
        guard v.hasPrefix("IOMMU:", at: i0) else { return false }
        let ds = i0 + 6
        let de = v.tokenEnd(ds)
        let ns = v.skipSpaces(de)
        let ne = v.tokenEnd(ns)
        guard de > ds, ne > ns else { return false }
        var i = ne
        guard let iova = Self.hexField(v, "iova=", &i), let fl = Self.hexField(v, "flags=", &i) else { return false }
        let dev = device(v, ns, ne, sink: &sink)
        let driver = sink.intern(v.string(ds, de))
        put(
            &sink,
            event(
                .iommuPageFault, ts, line, device: dev, flags: fl & 1 != 0 ? .write : [], address: iova,
                aux: UInt32(truncatingIfNeeded: fl), aux2: driver))
        return true
    }

    // MARK: swiotlb, intel_iommu

    private mutating func swiotlb(
        _ v: LineView, _ i0: Int, _ ts: UInt64, _ line: UInt64, _ sink: inout some EventSink
    ) -> Bool {
        guard let d = v.find("dev_name: ", from: i0) else { return false }
        let e = v.tokenEnd(d)
        var i = e
        guard e > d, let mask = Self.hexField(v, "dma_mask=", &i), let addr = Self.hexField(v, "dev_addr=", &i),
            let size = Self.decField(v, "size=", &i)
        else { return false }
        let ms = v.skipSpaces(i)
        let me = v.tokenEnd(ms)
        let mode: SwiotlbMode
        if v.equals(ms, me, "NORMAL") {
            mode = .normal
        } else if v.equals(ms, me, "FORCE") {
            mode = .force
        } else if v
            .equals(ms, me, "NO_FORCE")
        {
            mode = .noForce
        } else {
            return false
        }
        let dev = device(v, d, e, sink: &sink)
        put(
            &sink,
            event(
                .swiotlbBounce, ts, line, device: dev, detail: mode.rawValue, address: addr, address2: mask, size: size)
        )
        return true
    }

    private mutating func intel(
        _ v: LineView, _ i0: Int, _ name: FtraceEventName, _ ts: UInt64, _ line: UInt64,
        _ sink: inout some EventSink
    ) -> Bool {
        guard let d = v.find("dev=", from: i0) else { return false }
        let e = v.tokenEnd(d)
        guard e > d else { return false }
        var i = e
        // map_sg/bounce_map_sg 5.6+: `[%d/%d]` entry index (1-based) and count.
        var index: UInt32 = 0
        let b = v.skipSpaces(i)
        if b < v.count && v[b] == 0x5B {
            var k = b + 1
            guard let n = v.dec(&k), k < v.count, v[k] == 0x2F else { return false }
            k += 1
            guard v.dec(&k) != nil, k < v.count, v[k] == 0x5D else { return false }
            index = n > 0 ? UInt32(clamping: n - 1) : 0
            i = k + 1
        }
        guard let addr = Self.hexField(v, "dev_addr=", &i) else { return false }
        let dev = device(v, d, e, sink: &sink)
        switch name {
        case .intelMapSingle, .intelMapSg, .intelBounceMapSingle, .intelBounceMapSg:
            guard let phys = Self.hexField(v, "phys_addr=", &i), let size = Self.decField(v, "size=", &i) else {
                return false
            }
            let api: MapAPI = name == .intelMapSingle ? .intelSingle : (name == .intelMapSg ? .intelSG : .intelBounce)
            put(
                &sink,
                event(
                    .dmaMap, ts, line, device: dev, detail: api.rawValue, address: addr, address2: phys, size: size,
                    aux2: index))
        default:
            guard let size = Self.decField(v, "size=", &i) else { return false }
            let api: MapAPI =
                name == .intelUnmapSingle ? .intelSingle : (name == .intelUnmapSg ? .intelSG : .intelBounce)
            put(
                &sink,
                event(
                    .dmaUnmap, ts, line, device: dev, detail: api.rawValue, address: addr, size: size))
        }
        return true
    }
}
