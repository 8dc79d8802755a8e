import TraceFormat

/// Imports a guest kernel log (`dmesg`, `journalctl -k`, syslog, a serial console capture, an excerpt pasted
/// into a bug report or a mail): IOMMU faults, swiotlb exhaustion, DMA-API debug warnings, virtio probe
/// failures and boot facts (Linux dmar.c/amd_iommu.c/arm-smmu-v3.c/virtio-iommu.c fault prints of each era,
/// printk timestamps; docs/dmesg.md).
///
/// Every record is read by the structure of the printk format that wrote it (the formats of each kernel
/// era are listed in docs/dmesg.md with the file and version they come from):
/// - Intel VT-d DMA faults of every era (3.x/4.x two-line, 5.x `PASID`, 5.14+ `NO_PASID`/`0x` forms):
///   ``EventKind/guestFault``. **The fault reason is decimal before 5.14 (`[fault reason 06]`, `37` for 0x25)
///   and hex after (`[fault reason 0x06]`)**: a reason with `0x` is read as hex, any other as decimal.
///   Interrupt-remapping faults (`INTR-REMAP`): ``EventKind/intrRemapFault`` with the interrupt index.
/// - AMD-Vi `Event logged [...]` with `device=` inside, with a device prefix, with a PCI segment, and split
///   by printk continuation over two lines (4.x): ``EventKind/guestFault`` with the event type as reason.
/// - ARM SMMUv2 context faults (mainline and downstream forms, with their FSR/FAR/SID follow-up lines):
///   ``EventKind/smmuContextFault``.
/// - ARM SMMUv3 events (raw 4-dword dumps, also interleaved with other lines, and the decoded 6.15+
///   lines): ``EventKind/smmuv3Event``.
/// - swiotlb exhaustion (`swiotlb buffer is full`, `Out of SW-IOMMU space`): ``EventKind/swiotlbFull``;
///   `overflow … of DMA mask` / `DMA addr … overflow`: ``EventKind/dmaMapError`` with the mask in address2.
/// - DMA-API debug (`DMA-API: <drv> <dev>: ...` and `<drv> <dev>: DMA-API: ...`, also wrapped).
/// - virtio probe failures, and boot facts into ``TraceMetadata/capture`` and the device table.
///
/// A line that starts one of these records but does not parse is a problem (`file:line: reason`), never an
/// event: no event is emitted with a device or an address it was not given. Records spread over lines
/// (printk continuations, mail-client wrapping, tab-indented wraps) are joined when the joined text parses
/// as one record, and the joins are counted in ``IngestDiagnostics/joined``. Lines whose first non-blank
/// byte is `#` are comments (fixture headers; no kernel line starts with `#`).
public struct DmesgImporter: Importer {
    public static let formatID = "dmesg"

    public init() {}

    /// Lines with a `[ seconds.micro]` (or `kernel:`) prefix, and kernel-log phrases.
    public static func sniff(_ head: UnsafeRawBufferPointer) -> Int {
        var lines = 0
        var stamped = 0
        var phrases = 0
        var stop = false
        var n: UInt64 = 0
        _ = IngestInput.scanLines(head, final: false, line: &n) { raw, _ in
            if stop { return }
            var v = LineView(raw)
            if v.count > 0 && v[v.count - 1] == 0x0D { v = LineView(base: v.base, count: v.count - 1) }
            let s = v.skipSpaces(0)
            if v.count == s || v[s] == 0x23 { return }
            if v.hasControlBytes() { stop = true; lines = 0; return }
            lines += 1
            let p = DmesgPrefix.parse(v)
            if p.timestamp != nil || (p.stamped && p.message > 0) { stamped += 1 }
            let i = p.message
            if v.search("Linux version ", from: i) != nil || v.search("DMAR", from: i) != nil
                || v.search("Command line:", from: i) != nil || v.search("AMD-Vi", from: i) != nil
                || v.search("arm-smmu", from: i) != nil || v.search("DMA-API", from: i) != nil
                || v.search("IO_PAGE_FAULT", from: i) != nil || v.search("swiotlb", from: i) != nil
                || v.search("SW-IOMMU", from: i) != nil || v.search("INTR-REMAP", from: i) != nil
                || v.search("context fault", from: i) != nil
            {
                phrases += 1
            }
            if lines >= 200 { stop = true }
        }
        guard lines > 0 else { return 0 }
        if stamped * 2 >= lines { return phrases > 0 ? 85 : 70 }
        // An excerpt without timestamps (console output, documentation, a paste): any IOMMU/DMA phrase
        // makes it a kernel log unless another format claims it more strongly.
        return phrases * 4 >= lines ? 40 : phrases > 0 ? 20 : 0
    }

    /// Skips the line's prefix; returns the timestamp in ns, if any (see ``DmesgPrefix``).
    static func prefix(_ v: LineView, _ i: inout Int) -> UInt64? {
        let p = DmesgPrefix.parse(v)
        i = p.message
        return p.timestamp
    }

    public mutating func run(
        _ input: IngestInput, source: UInt16, clock: UInt8,
        into sink: inout some EventSink, diagnostics: inout IngestDiagnostics
    ) throws(IngestError) {
        var p = DmesgParser(path: input.path, source: source, clock: clock)
        input.forEachLine { raw, line in
            p.parse(LineView(raw), line: line, sink: &sink)
        }
        p.flush(sink: &sink)
        try input.checkReadError()
        if let e = p.sinkError { throw .unreadable(path: input.path, reason: "cannot store events: \(e)") }
        if p.lines > 0 && p.recognised == 0 && p.binaryLines * 2 >= p.lines {
            throw .badFormat(
                path: input.path, offset: 0,
                reason: "not a kernel log: \(p.binaryLines) of \(p.lines) lines hold binary data")
        }
        diagnostics.merge(p.diagnostics)
    }
}

/// One record decoded from a line (or joined lines), not yet stored: decoding has no side effects, so a
/// join can be tried and dropped.
struct DmesgRecord {
    var event: Event
    /// The device by name (and requester id when it is a PCI name).
    var device: (name: String, sid: UInt16?)?
    /// Interned into ``Event/aux`` / ``Event/aux2`` when stored.
    var auxString: String?
    var aux2String: String?
    /// The ``IngestDiagnostics/understood`` key.
    var name: String
}

/// What a decoder made of a line.
enum DmesgDecode {
    /// Not a line of this decoder.
    case none
    /// One complete record.
    case record(DmesgRecord)
    /// A record whose text ends before its structure does; `partial` is what a final line is worth on
    /// its own (the VT-d two-line form waiting for its reason), nil when it is worth nothing.
    case incomplete(String, partial: DmesgRecord?)
    /// A line of this decoder that does not parse: the reason.
    case malformed(String)
    /// Recognised, deliberately not an event (the key counts in ``IngestDiagnostics/ignored``).
    case ignored(String)
}

/// Per-input state of the dmesg parser (records that span lines are completed here).
struct DmesgParser {
    let path: String
    let source: UInt16
    let clock: UInt8
    var diagnostics = IngestDiagnostics()
    private(set) var sinkError: String?
    private(set) var lines = 0
    private(set) var recognised = 0
    private(set) var binaryLines = 0

    /// A record-start line whose own structure says it is incomplete, waiting for its wrapped tail.
    private var held: Held?
    /// A VT-d fault whose `[fault reason NN]` comes on the next line (3.x/4.x).
    private var pendingIntel: DmesgRecord?
    /// Multi-line SMMU records being assembled, by the SMMU's device name (interleaving-safe).
    private var smmu: [PendingSMMU] = []
    /// The last swiotlb-full record (device, size, line): the 4.x `Out of SW-IOMMU space` line that
    /// follows it reports the same failure.
    private var lastSwiotlbFull: (device: String, size: UInt64, line: UInt64)?
    /// The guest said its IOMMU driver is off (`DMAR: IOMMU disabled`, `intel_iommu=off`): the default domain
    /// type line that follows describes domains that are never created.
    private var iommuOff = false

    private struct Held {
        var bytes: [UInt8]
        var message: Int
        var ts: UInt64
        var line: UInt64
        var reason: String
        var partial: DmesgRecord?
    }

    /// An SMMU record (v2 context fault or v3 event) and the lines it still accepts.
    struct PendingSMMU {
        var owner: String
        var record: DmesgRecord
        var v3: Bool
        var dwords: [UInt64] = []
        var decoded = false
        /// v2: the address was given (iova= or FAR).
        var hasAddress = false
        /// Lines seen since the record started.
        var age = 0
    }

    /// How many lines a multi-line SMMU record waits for its next piece among unrelated lines.
    static let smmuWindow = 16

    init(path: String, source: UInt16, clock: UInt8) {
        self.path = path
        self.source = source
        self.clock = clock
    }

    private mutating func put(_ sink: inout some EventSink, _ e: Event) {
        do { try sink.append(e) } catch { if sinkError == nil { sinkError = "\(error)" } }
    }

    private mutating func understood(_ name: String) {
        recognised += 1
        diagnostics.understood[name, default: 0] += 1
    }

    /// Records the line a capture fact was read from (`evidence.KEY` in the metadata's `extra`, shown by `info`
    /// and the replay notes): `guest-dmesg.txt:123: DMAR: IOMMU disabled`.
    private func evidence(_ key: String, _ v: LineView, _ m: Int, _ line: UInt64, sink: inout some EventSink) {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let text = "\(name):\(line): \(v.string(m, min(v.count, m + 160)))"
        let k = "evidence." + key
        if let old = sink.metadata.extra[k], !old.isEmpty, sink.metadata.extra[k] != text {
            sink.metadata.extra[k] = old.count < 400 ? old + "; " + text : old
        } else {
            sink.metadata.extra[k] = text
        }
    }

    private mutating func fact(_ name: String) {
        recognised += 1
        diagnostics.ignored["fact:" + name, default: 0] += 1
    }

    private mutating func bad(_ line: UInt64, _ message: @autoclosure () -> String) {
        if diagnostics.problems.count >= diagnostics.maxProblems {
            diagnostics.skipped += 1
            diagnostics.problemsNotStored += 1
            return
        }
        diagnostics.skip(IngestDiagnostics.Problem(file: path, position: line, message: message()))
    }

    private func event(_ kind: EventKind, _ ts: UInt64, _ line: UInt64) -> Event {
        Event(kind: kind, timestamp: ts, clock: clock, source: source, position: line)
    }

    /// Stores a decoded record: its device, its strings, the event.
    private mutating func store(_ r: DmesgRecord, sink: inout some EventSink) {
        var e = r.event
        if let d = r.device { e.device = sink.device(DeviceInfo(name: d.name, sid: d.sid)) }
        if let s = r.auxString { e.aux = sink.intern(s) }
        if let s = r.aux2String { e.aux2 = sink.intern(s) }
        understood(r.name)
        put(&sink, e)
    }

    /// `0000:00:05.0` from bus/dev/fn, with the PCI requester id.
    static func pciName(segment: UInt64 = 0, bus: UInt64, dev: UInt64, fn: UInt64) -> (String, UInt16) {
        let name =
            "\(Hex.digits(segment, width: 4)):\(Hex.digits(bus, width: 2)):\(Hex.digits(dev, width: 2)).\(Hex.digits(fn))"
        return (name, UInt16(truncatingIfNeeded: (bus & 0xFF) << 8 | (dev & 0x1F) << 3 | (fn & 7)))
    }

    /// Parses `[0x]bb:[0x]dd.f` or `ssss:bb:dd.f` at `i`.
    static func parseBDF(_ v: LineView, _ i: inout Int) -> (String, UInt16)? {
        var j = i
        guard let a = v.hex(&j), j < v.count, v[j] == 0x3A else { return nil }
        j += 1
        guard let b = v.hex(&j), j < v.count else { return nil }
        var seg: UInt64 = 0
        var bus = a
        var dev = b
        if v[j] == 0x3A {
            j += 1
            seg = a
            bus = b
            guard let d = v.hex(&j), j < v.count else { return nil }
            dev = d
        }
        guard v[j] == 0x2E else { return nil }
        j += 1
        guard let fn = v.hex(&j), bus <= 0xFF, dev <= 0x1F, fn <= 7, seg <= 0xFFFF else { return nil }
        i = j
        return pciName(segment: seg, bus: bus, dev: dev, fn: fn)
    }

    /// A device named by the token `a..<b`: a PCI name with its requester id, or any other name.
    static func deviceRef(_ v: LineView, _ a: Int, _ b: Int) -> (name: String, sid: UInt16?) {
        var j = a
        if let (name, sid) = parseBDF(v, &j), j == b { return (name, sid) }
        return (v.string(a, b), nil)
    }

    /// The `<driver> <device>: ` prefix of a `dev_*()` message whose text starts at `r`: the device token
    /// (the last word before the `: ` that ends right before `r`), when there is one.
    static func devicePrefix(_ v: LineView, _ m: Int, _ r: Int) -> (name: String, sid: UInt16?)? {
        var t = r
        while t > m && v[t - 1] == 0x20 { t -= 1 }
        guard t > m, v[t - 1] == 0x3A else { return nil }
        t -= 1
        var s = t
        while s > m && v[s - 1] != 0x20 { s -= 1 }
        // `dev_*()` prints `driver device: `; a lone `SUBSYSTEM: ` is a pr_fmt prefix, not a device.
        guard s > m, s < t else { return nil }
        return deviceRef(v, s, t)
    }

    private mutating func pciDevice(_ name: String, _ sid: UInt16, sink: inout some EventSink) -> UInt16 {
        sink.device(DeviceInfo(name: name, sid: sid))
    }

    mutating func flush(sink: inout some EventSink) {
        if let h = held {
            held = nil
            finishHeld(h, sink: &sink)
        }
        if let p = pendingIntel {
            pendingIntel = nil
            store(p, sink: &sink)
        }
        while !smmu.isEmpty { finishSMMU(smmu.removeFirst(), sink: &sink) }
    }

    mutating func parse(_ raw: LineView, line: UInt64, sink: inout some EventSink) {
        lines += 1
        var v = raw
        while v.count > 0 && (v[v.count - 1] == 0x0D || v[v.count - 1] == 0x20 || v[v.count - 1] == 0x09) {
            v = LineView(base: v.base, count: v.count - 1)
        }
        if v.count == 0 { diagnostics.comments += 1; return }
        if v.hasControlBytes() {
            binaryLines += 1
            bad(line, "binary data in a text input")
            return
        }
        let first = v.skipSpaces(0)
        if first < v.count && v[first] == 0x23 { diagnostics.comments += 1; return }  // `# source: ...` fixture headers
        let p = DmesgPrefix.parse(v)
        let m = p.message
        let ts = p.timestamp ?? 0

        for i in smmu.indices { smmu[i].age += 1 }

        // A held record-start line: the current line may be its wrapped tail.
        if let h = held {
            held = nil
            if tryJoin(h, v, p, sink: &sink) { return }
            finishHeld(h, sink: &sink)
        }

        // The VT-d two-line form: `DMAR:[fault reason 06] ...` / `INTR-REMAP:[fault reason 34] ...`.
        if var pi = pendingIntel {
            pendingIntel = nil
            if let r = v.search("[fault reason ", from: m) {
                var k = r + 14
                if let reason = v.hexOrDec(&k), k < v.count, v[k] == 0x5D {
                    pi.event.aux = UInt32(truncatingIfNeeded: reason)
                    let t = v.skipSpaces(k + 1)
                    pi.aux2String = v.string(t, v.count)
                    pi.event.position = pi.event.position
                    store(pi, sink: &sink)
                    diagnostics.joined["printk continuation (VT-d fault reason line)", default: 0] += 1
                    return
                }
            }
            store(pi, sink: &sink)
        }

        if smmuContinuation(v, m, sink: &sink) { expireSMMU(sink: &sink); return }
        expireSMMU(sink: &sink)

        // An orphan AMD-Vi continuation (`IO_PAGE_FAULT device=...]` without its `Event logged [`).
        if Self.amdContinuationStart(v, m) {
            bad(line, "AMD-Vi event continuation without its `AMD-Vi: Event logged [` line: \(v.text())")
            return
        }

        let d = decode(v, m, ts, line)
        handle(d, v, m, ts, line, sink: &sink)
    }

    /// Stores, holds or reports what ``decode`` made of a line.
    private mutating func handle(
        _ d: DmesgDecode, _ v: LineView, _ m: Int, _ ts: UInt64, _ line: UInt64, sink: inout some EventSink
    ) {
        switch d {
        case .record(let r):
            commit(r, sink: &sink)
        case .incomplete(let why, let partial):
            held = Held(
                bytes: Array(UnsafeBufferPointer(start: v.base, count: v.count)), message: m, ts: ts, line: line,
                reason: why, partial: partial)
        case .malformed(let why):
            bad(line, "\(why): \(v.text())")
        case .ignored(let key):
            recognised += 1
            diagnostics.ignored[key, default: 0] += 1
        case .none:
            if v.search("device refuses features", from: m) != nil
                || v.search("device must provide VIRTIO_F_", from: m) != nil
                || v.search(" failed with error ", from: m) != nil
            {
                virtioProbe(v, m, ts, line, sink: &sink)
            } else {
                bootFact(v, m, ts, line, sink: &sink)
            }
        }
    }

    /// Stores a complete record, or starts a multi-line SMMU record with it.
    private mutating func commit(_ r: DmesgRecord, sink: inout some EventSink) {
        switch r.event.kind {
        case .smmuContextFault, .smmuv3Event:
            let owner = r.auxString ?? ""
            var rec = r
            rec.auxString = nil
            // A new record of the same SMMU ends the previous one.
            if let i = smmu.firstIndex(where: { $0.owner == owner }) { finishSMMU(smmu.remove(at: i), sink: &sink) }
            var ps = PendingSMMU(owner: owner, record: rec, v3: r.event.kind == .smmuv3Event)
            ps.hasAddress = r.event.kind == .smmuContextFault && r.event.address2 != Self.noAddressMark
            if ps.hasAddress == false && r.event.kind == .smmuContextFault { ps.record.event.address2 = 0 }
            if r.event.kind == .smmuv3Event && r.name == "smmuv3_event_decoded" {
                ps.decoded = true
                ps.record.name = "smmuv3_event"
            }
            smmu.append(ps)
        case .swiotlbFull:
            if r.name == "swiotlb_out_of_space", let last = lastSwiotlbFull, let d = r.device, d.name == last.device,
                r.event.size == last.size, r.event.position - last.line <= 3
            {
                // 4.x: swiotlb_tbl_map_single() warned `buffer is full`, then swiotlb_full() reports the
                // same failed mapping as `Out of SW-IOMMU space`: one failure, one event.
                recognised += 1
                diagnostics.ignored["swiotlb_out_of_space (same failure as the line before)", default: 0] += 1
                lastSwiotlbFull = nil
                return
            }
            if let d = r.device { lastSwiotlbFull = (d.name, r.event.size, r.event.position) }
            var rec = r
            if rec.name == "swiotlb_out_of_space" || rec.name == "swiotlb_buffer_full" { rec.name = "swiotlb_full" }
            store(rec, sink: &sink)
        default:
            store(r, sink: &sink)
        }
    }

    /// Marks a v2 context fault decoded without an address (address2 is reset before storing).
    static let noAddressMark: UInt64 = 0xFFFF_FFFF_FFFF_FFFF

    // MARK: Joining

    /// Tries `held` + the current line as one record: the current line must not start a record of its
    /// own (no timestamp or `kernel:` prefix), except for the AMD-Vi 4.x continuation, which has one.
    private mutating func tryJoin(_ h: Held, _ v: LineView, _ p: DmesgPrefix, sink: inout some EventSink) -> Bool {
        let amd = Self.amdContinuationStart(v, p.message)
        guard amd || !p.stamped else { return false }
        var bytes = h.bytes
        let tail = amd ? p.message : v.skipSpaces(0)
        if !amd { bytes.append(0x20) }
        bytes.append(contentsOf: UnsafeBufferPointer(start: v.base + tail, count: v.count - tail))
        let d = bytes.withUnsafeBufferPointer { b -> DmesgDecode in
            let jv = LineView(base: b.baseAddress!, count: b.count)
            return decode(jv, h.message, h.ts, h.line)
        }
        switch d {
        case .record(let r):
            let t = v.skipSpaces(tail)
            let kernelTwoLine =
                v.hasPrefix("DMAR:[fault reason ", at: t) || v.hasPrefix("INTR-REMAP:[fault reason ", at: t)
            diagnostics.joined[
                amd
                    ? "printk continuation (AMD-Vi event)"
                    : kernelTwoLine ? "printk continuation (VT-d fault reason line)" : "wrapped line", default: 0] += 1
            commit(r, sink: &sink)
            return true
        case .incomplete(let why, let partial):
            // Wrapped over more than two lines (DMA-API warnings in the kernel's own documentation).
            guard bytes.count < 4096 else { return false }
            diagnostics.joined[amd ? "printk continuation (AMD-Vi event)" : "wrapped line", default: 0] += 1
            held = Held(bytes: bytes, message: h.message, ts: h.ts, line: h.line, reason: why, partial: partial)
            return true
        default:
            return false
        }
    }

    /// A held line that found no tail: what it is worth alone.
    private mutating func finishHeld(_ h: Held, sink: inout some EventSink) {
        if let partial = h.partial {
            if partial.event.kind == .guestFault || partial.event.kind == .intrRemapFault {
                pendingIntel = partial
            } else {
                commit(partial, sink: &sink)
            }
            return
        }
        let text = h.bytes.withUnsafeBufferPointer { LineView(base: $0.baseAddress!, count: $0.count).text() }
        bad(h.line, "\(h.reason): \(text)")
    }

    /// True when the message at `m` is the second half of a 4.x split AMD-Vi event: an upper-case event
    /// name (`IO_PAGE_FAULT`, `INVALID_DEVICE_REQUEST`) followed by a blank and `key=` fields, or `]`.
    static func amdContinuationStart(_ v: LineView, _ m: Int) -> Bool {
        var e = m
        while e < v.count, (v[e] >= 0x41 && v[e] <= 0x5A) || v[e] == 0x5F || (v[e] >= 0x30 && v[e] <= 0x39) { e += 1 }
        guard e - m >= 6, v[m] >= 0x41 && v[m] <= 0x5A, v.search("_", from: m).map({ $0 < e }) ?? false else {
            return false
        }
        if e < v.count && v[e] == 0x5D { return true }
        guard e < v.count, v[e] == 0x20 else { return false }
        let k = v.tokenEnd(e + 1)
        var eq = e + 1
        while eq < k && v[eq] != 0x3D { eq += 1 }
        return eq < k && eq > e + 1
    }

    // MARK: Decoding

    /// Decodes one line (or joined text) without side effects.
    func decode(_ v: LineView, _ m: Int, _ ts: UInt64, _ line: UInt64) -> DmesgDecode {
        if let r = v.search("Request device [", from: m) {
            return intelFault(v, m, r, ts, line)
        }
        if let r = v.search("Event logged [", from: m) {
            return amdEvent(v, m, r, ts, line)
        }
        if let r = v.search("arm-smmu-v3", from: m), let e = v.search(": event 0x", from: r) {
            return smmuv3Start(v, m, e, ts, line)
        }
        if v.search("arm-smmu-v3", from: m) != nil, let e = v.search(": event: ", from: m) {
            return smmuv3Decoded(v, m, e, ts, line)
        }
        if let r = v.search("context fault", from: m), v.search("nhandled", from: m).map({ $0 < r }) ?? false {
            return smmuContextFault(v, m, r, ts, line)
        }
        if let r = v.search("swiotlb buffer is full", from: m) {
            return swiotlbFull(v, m, r, ts, line)
        }
        if let r = v.search("Out of SW-IOMMU space for ", from: m) {
            return swiotlbOutOfSpace(v, m, r, ts, line)
        }
        if let r = v.search("overflow", from: m), v.search("mask", from: r) != nil, Self.hexPlusDecimal(v, m) {
            return dmaOverflow(v, m, r, ts, line)
        }
        if let r = v.search("DMA-API: ", from: m) {
            return dmaDebug(v, m, r, ts, line)
        }
        return .none
    }

    /// True when the message holds `0x<hex>+<decimal>` (the `%pad+%zu` of the overflow reports).
    static func hexPlusDecimal(_ v: LineView, _ m: Int) -> Bool {
        var from = m
        while let p = v.search("+", from: from) {
            if p > m + 2, p + 1 < v.count, v[p + 1] >= 0x30 && v[p + 1] <= 0x39 {
                var s = p
                while s > m,
                    (v[s - 1] >= 0x30 && v[s - 1] <= 0x39) || ((v[s - 1] | 0x20) >= 0x61 && (v[s - 1] | 0x20) <= 0x66)
                { s -= 1 }
                if s > m + 1, v[s - 1] == 0x78, v[s - 2] == 0x30, s < p { return true }
            }
            from = p + 1
        }
        return false
    }

    // MARK: Intel VT-d

    private func intelFault(_ v: LineView, _ m: Int, _ r: Int, _ ts: UInt64, _ line: UInt64) -> DmesgDecode {
        let write = v.search("DMA Write", from: m).map { $0 < r } ?? false
        let read = v.search("DMA Read", from: m).map { $0 < r } ?? false
        let intr = v.search("INTR-REMAP", from: m).map { $0 < r } ?? false
        guard write || read || intr else { return .malformed("DMAR fault line without a request type") }
        var i = r + 16
        if i < v.count && v[i] == 0x5B { i += 1 }  // 3.x INTR-REMAP: `Request device [[f0:1f.0]`
        guard let (name, sid) = Self.parseBDF(v, &i), i < v.count, v[i] == 0x5D else {
            if v.skipSpaces(r + 16) >= v.count {
                return .incomplete("DMAR fault line ends before its device", partial: nil)
            }
            return .malformed("DMAR fault line with a malformed device")
        }
        let key: StaticString = intr ? "fault index " : "fault addr "
        guard let k = v.search(key, from: i) else {
            // Cut right after the device, or inside `fault addr`/`fault index`.
            let rest = v.string(v.skipSpaces(i + 1), v.count)
            if rest.isEmpty || "PASID".hasPrefix(rest) || (intr ? "fault index" : "fault addr").hasPrefix(rest)
                || (rest.hasPrefix("PASID ") && !rest.contains("fault"))
            {
                return .incomplete("DMAR fault line ends before its \(intr ? "index" : "address")", partial: nil)
            }
            return .malformed("DMAR fault line without \(intr ? "a fault index" : "an address")")
        }
        var j = k + (intr ? 12 : 11)
        if v.skipSpaces(j) >= v.count { return .incomplete("DMAR fault line ends before its address", partial: nil) }
        guard let a = v.hex(&j), j == v.count || v[j] == 0x20 else {
            return .malformed("DMAR fault line with a malformed \(intr ? "index" : "address")")
        }
        var ev = event(intr ? .intrRemapFault : .guestFault, ts, line)
        ev.detail = FaultSource.vtd.rawValue
        // 3.x–5.x print the index as `addr >> 48` already; the address as is.
        ev.address = a
        if write { ev.eventFlags.insert(.write) }
        var rec = DmesgRecord(event: ev, device: (name, sid), name: intr ? "dmar_intr_remap_fault" : "dmar_fault")
        guard let rk = v.search("[fault reason ", from: j) else {
            let rest = v.string(v.skipSpaces(j), v.count)
            if rest.isEmpty || "[fault reason".hasPrefix(rest) {
                // 3.x/4.x: `DMAR:[fault reason 06] ...` follows on a line of its own.
                var partial = rec
                partial.event.aux2 = Event.noString
                return .incomplete(
                    "DMAR fault line without its [fault reason] line", partial: rest.isEmpty ? partial : nil)
            }
            return .malformed("DMAR fault line without a [fault reason]")
        }
        var t = rk + 14
        if v.skipSpaces(t) >= v.count {
            return .incomplete("DMAR fault line ends inside its [fault reason]", partial: nil)
        }
        guard let reason = v.hexOrDec(&t), t < v.count, v[t] == 0x5D else {
            if t >= v.count { return .incomplete("DMAR fault line ends inside its [fault reason]", partial: nil) }
            return .malformed("DMAR fault line with a malformed reason")
        }
        rec.event.aux = UInt32(truncatingIfNeeded: reason)
        let s = v.skipSpaces(t + 1)
        rec.aux2String = s < v.count ? v.string(s, v.count) : ""
        return .record(rec)
    }

    // MARK: AMD-Vi

    private static let amdTypes: [(StaticString, UInt32)] = [
        ("ILLEGAL_DEV_TABLE_ENTRY", 1), ("IO_PAGE_FAULT", 2), ("DEV_TAB_HARDWARE_ERROR", 3),
        ("PAGE_TAB_HARDWARE_ERROR", 4), ("ILLEGAL_COMMAND_ERROR", 5), ("COMMAND_HARDWARE_ERROR", 6),
        ("IOTLB_INV_TIMEOUT", 7), ("INVALID_DEVICE_REQUEST", 8), ("INVALID_PPR_REQUEST", 9),
        ("RMP_PAGE_FAULT", 0xd), ("RMP_HW_ERROR", 0xe)
    ]

    private func amdEvent(_ v: LineView, _ m: Int, _ r: Int, _ ts: UInt64, _ line: UInt64) -> DmesgDecode {
        let s = r + 14
        if v.skipSpaces(s) >= v.count {
            return .incomplete("AMD-Vi event split by a printk continuation, its second line is missing", partial: nil)
        }
        var e = s
        while e < v.count && v[e] != 0x20 && v[e] != 0x5D { e += 1 }
        var type: UInt32 = 0
        for (n, t) in Self.amdTypes where v.equals(s, e, n) { type = t }
        if v.equals(s, e, "UNKNOWN") { return .ignored("amdvi_unknown_event") }
        guard type != 0 else { return .malformed("AMD-Vi event of an unknown type") }
        guard let close = v.search("]", from: e) else {
            return .incomplete("AMD-Vi event line ends before its closing ]", partial: nil)
        }
        var ev = event(.guestFault, ts, line)
        ev.detail = FaultSource.amdvi.rawValue
        ev.aux = type
        let typeName = v.string(s, e)
        var rec = DmesgRecord(event: ev, aux2String: typeName, name: "amdvi_" + typeName.lowercased())
        let fields = LineView(base: v.base, count: close)
        if let k = fields.find("device=", from: e) {
            var j = k
            guard let (name, sid) = Self.parseBDF(fields, &j) else {
                return .malformed("AMD-Vi event with a malformed device=")
            }
            rec.device = (name, sid)
        } else if let d = Self.devicePrefix(v, m, v.search("AMD-Vi: ", from: m).map { $0 < r ? $0 : r } ?? r) {
            rec.device = d
        }
        if let k = fields.find("address=", from: e) {
            var j = k
            guard let a = fields.hex(&j) else { return .malformed("AMD-Vi event with a malformed address=") }
            rec.event.address = a
        } else if let k = fields.find("gpa=", from: e) {  // RMP_PAGE_FAULT (6.x): the guest physical address
            var j = k
            guard let a = fields.hex(&j) else { return .malformed("AMD-Vi event with a malformed gpa=") }
            rec.event.address = a
        } else if type == 2 {
            return .malformed("AMD-Vi IO_PAGE_FAULT without an address=")
        }
        // No `device=` and no device prefix: kept with no device (none was printed), never a made-up one.
        if let k = fields.find("flags=", from: e) {
            var j = k
            guard let f = fields.hex(&j) else { return .malformed("AMD-Vi event with malformed flags=") }
            // EVENT_FLAG_RW (0x020): the access was a write (drivers/iommu/amd/iommu.c).
            if f & 0x20 != 0 && (type == 2 || type == 0xd) { rec.event.eventFlags.insert(.write) }
        }
        return .record(rec)
    }

    // MARK: ARM SMMUv3

    static let smmuNames: [UInt32: String] = [
        0x01: "F_UUT", 0x02: "C_BAD_STREAMID", 0x03: "F_STE_FETCH", 0x04: "C_BAD_STE", 0x05: "F_BAD_ATS_TREQ",
        0x06: "F_STREAM_DISABLED", 0x07: "F_TRANSL_FORBIDDEN", 0x08: "C_BAD_SUBSTREAMID", 0x09: "F_CD_FETCH",
        0x0a: "C_BAD_CD", 0x0b: "F_WALK_EABT", 0x10: "F_TRANSLATION", 0x11: "F_ADDR_SIZE", 0x12: "F_ACCESS",
        0x13: "F_PERMISSION", 0x20: "F_TLB_CONFLICT", 0x21: "F_CFG_CONFLICT", 0x24: "E_PAGE_REQUEST",
        0x25: "F_VMS_FETCH"
    ]

    /// The SMMU device name of a `arm-smmu-v3 <name>: ` / `arm-smmu <name>: ` line (the token before `e`).
    static func owner(_ v: LineView, _ m: Int, _ e: Int) -> String {
        var s = e
        while s > m && v[s - 1] != 0x20 { s -= 1 }
        return v.string(s, e)
    }

    /// `arm-smmu-v3 <smmu>: event 0x10 received:`; the 4 dwords follow on lines of their own.
    private func smmuv3Start(_ v: LineView, _ m: Int, _ e: Int, _ ts: UInt64, _ line: UInt64) -> DmesgDecode {
        var k = e + 10
        guard let id = v.hex(&k), id <= 0xFF else { return .malformed("SMMUv3 event line with a malformed event id") }
        var ev = event(.smmuv3Event, ts, line)
        ev.detail = UInt8(id)
        ev.aux = Event.noString
        return .record(DmesgRecord(event: ev, auxString: Self.owner(v, m, e), name: "smmuv3_event"))
    }

    /// A decoded (6.15+) `event: F_TRANSLATION client: ... sid: ... iova: ...` line without a raw dump
    /// before it.
    private func smmuv3Decoded(_ v: LineView, _ m: Int, _ e: Int, _ ts: UInt64, _ line: UInt64) -> DmesgDecode {
        var ev = event(.smmuv3Event, ts, line)
        ev.aux = Event.noString
        var ps = PendingSMMU(
            owner: Self.owner(v, m, e), record: DmesgRecord(event: ev, name: "smmuv3_event_decoded"), v3: true)
        guard Self.applyDecoded(&ps, v, e + 2) else {
            return .malformed("SMMUv3 decoded event line that does not parse")
        }
        var rec = ps.record
        rec.auxString = ps.owner
        return .record(rec)
    }

    /// Reads `event: NAME client: DEV sid: 0x.. ssid: 0x.. [iova: 0x.. ipa: 0x.. | fetch_addr: 0x..]` at `t`.
    static func applyDecoded(_ s: inout PendingSMMU, _ v: LineView, _ t: Int) -> Bool {
        let ns = t + 7
        let ne = v.tokenEnd(ns)
        guard ne > ns else { return false }
        let name = v.string(ns, ne)
        if let (id, _) = smmuNames.first(where: { $0.value == name }) {
            // The decoded line of the raw dump before it names the same event, or it is another event.
            if s.record.event.detail != 0 && s.record.event.detail != UInt8(id) { return false }
            s.record.event.detail = UInt8(id)
        } else if s.record.event.detail == 0 && name != "UNKNOWN" {
            return false
        }
        guard let sk = v.find("sid: ", from: ne) else { return false }
        var j = sk
        guard let sid = v.hex(&j), sid <= 0xFFFF_FFFF else { return false }
        if s.dwords.count == 4 && UInt64(s.dwords[0] >> 32) != sid { return false }
        s.record.event.aux = UInt32(sid)
        if let k = v.find("ssid: ", from: ne) {
            var j2 = k
            if let x = v.hex(&j2) { s.record.event.size = x }
        }
        if let c = v.find("client: ", from: ne) {
            let ce = v.tokenEnd(c)
            if !v.hasPrefix("(unassigned", at: c) { s.record.device = deviceRef(v, c, ce) }
        }
        if let k = v.find("iova: ", from: ne) {
            var j2 = k
            guard let a = v.hex(&j2) else { return false }
            s.record.event.address = a
        }
        if let k = v.find("ipa: ", from: ne) ?? v.find("fetch_addr: ", from: ne) {
            var j2 = k
            guard let a = v.hex(&j2) else { return false }
            s.record.event.address2 = a
        }
        s.decoded = true
        return true
    }

    // MARK: ARM SMMUv2

    /// `arm-smmu <smmu>: Unhandled context fault: fsr=0x402, iova=0x..., fsynr=0x..., cbfrsynra=0x..., cb=N`
    /// in any order and subset (3.x: iova, fsynr, cb; 4.x: + fsr; 5.0+: + cbfrsynra; downstream: `sid=17(0x11
    /// - AFI)`), and `Unhandled arm-smmu context fault from <dev>!` whose values follow as `FAR = `, `FSR = `,
    /// `FSYNR0 = `, `SID = ` lines.
    private func smmuContextFault(_ v: LineView, _ m: Int, _ r: Int, _ ts: UInt64, _ line: UInt64) -> DmesgDecode {
        let u = v.search("nhandled", from: m)!
        var ev = event(.smmuContextFault, ts, line)
        ev.aux2 = Event.noString
        ev.detail = 0xFF
        ev.address2 = Self.noAddressMark
        // `arm-smmu 15000000.iommu: Unhandled ...`: the owner is the token before the last `: ` before it.
        var lastColon: Int?
        var c = m
        while let x = v.search(": ", from: c), x < u {
            lastColon = x
            c = x + 1
        }
        var ps = PendingSMMU(
            owner: lastColon.map { Self.owner(v, m, $0) } ?? "",
            record: DmesgRecord(event: ev, name: "smmu_context_fault"), v3: false)
        guard Self.applyV2Fields(&ps, v, r + 13) != nil else {
            return .malformed("SMMU context fault with a malformed value")
        }
        if let from = v.search(" from ", from: r) {
            let ds = from + 6
            var de = v.tokenEnd(ds)
            if de > ds && v[de - 1] == 0x21 { de -= 1 }
            if de > ds { ps.record.device = Self.deviceRef(v, ds, de) }
        }
        var rec = ps.record
        if ps.hasAddress {
            rec.event.address2 = ps.record.event.address2
        } else {
            rec.event.address2 = Self.noAddressMark
        }
        rec.auxString = ps.owner
        return .record(rec)
    }

    /// Applies `key=value` / `KEY = value` pairs of a v2 context fault line from `t` on; returns how many
    /// it read, nil when a known key has a value that does not parse.
    static func applyV2Fields(_ s: inout PendingSMMU, _ v: LineView, _ t: Int) -> Int? {
        var i = t
        var n = 0
        while i < v.count {
            // A key: letters and digits, then optional blanks, `=`.
            while i < v.count && !isKeyByte(v[i]) { i += 1 }
            let ks = i
            while i < v.count && isKeyByte(v[i]) { i += 1 }
            let ke = i
            var j = v.skipSpaces(i)
            guard ke > ks, j < v.count, v[j] == 0x3D else { continue }
            j = v.skipSpaces(j + 1)
            let key = v.string(ks, ke).lowercased()
            var val: UInt64?
            switch key {
            case "cb", "bank#":
                val = v.hexOrDec(&j)
            case "sid":
                // `sid=17(0x11 - AFI)` (NVIDIA, decimal) or `SID=0x19c3`.
                val = v.hexOrDec(&j)
            default:
                val = v.hex(&j)
            }
            switch key {
            case "fsr", "iova", "far", "fsynr", "fsynr0", "cbfrsynra", "cb", "bank#", "sid":
                guard let x = val else { return nil }
                n += 1
                switch key {
                case "fsr": s.record.event.aux = UInt32(truncatingIfNeeded: x)
                case "iova", "far":
                    s.record.event.address = x
                    s.hasAddress = true
                case "fsynr", "fsynr0":
                    s.record.event.address2 = x
                    // FSYNR0.WNR (bit 4): the faulting access was a write.
                    if x & 0x10 != 0 {
                        s.record.event.eventFlags.insert(.write)
                    } else {
                        s.record.event.eventFlags.remove(.write)
                    }
                case "cbfrsynra":
                    s.record.event.size = x
                    // CBFRSYNRA.SID[15:0] (arm-smmu.h ARM_SMMU_CBFRSYNRA_SID) unless a SID is printed.
                    if s.record.event.aux2 == Event.noString { s.record.event.aux2 = UInt32(x & 0xFFFF) }
                case "cb", "bank#": s.record.event.detail = UInt8(truncatingIfNeeded: min(x, 0xFF))
                default: s.record.event.aux2 = UInt32(truncatingIfNeeded: x)
                }
            default:
                break
            }
            i = max(j, ke)
        }
        return n
    }

    private static func isKeyByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A) || c == 0x23
    }

    /// A line that continues a pending SMMU record (dwords, decoded lines, FSR/FAR/SID lines of the same
    /// SMMU); false when the line is none of these.
    private mutating func smmuContinuation(_ v: LineView, _ m: Int, sink: inout some EventSink) -> Bool {
        guard !smmu.isEmpty, let c = v.search(": ", from: m) else { return false }
        let owner = Self.owner(v, m, c)
        guard let idx = smmu.lastIndex(where: { $0.owner == owner }) else { return false }
        var s = smmu[idx]
        let t = v.skipSpaces(c + 2)
        if s.v3 {
            if s.dwords.count < 4 && !s.decoded && v.hasPrefix("0x", at: t) {
                var j = t
                if let q = v.hex(&j), j == v.count {
                    s.dwords.append(q)
                    s.age = 0
                    smmu[idx] = s
                    return true
                }
            }
            if v.hasPrefix("event: ", at: t) {
                if s.decoded {  // a second decoded line: a new event
                    return false
                }
                if Self.applyDecoded(&s, v, t) {
                    s.age = 0
                    smmu[idx] = s
                    return true
                }
                return false
            }
            if s.decoded && (v.hasPrefix("priv ", at: t) || v.hasPrefix("unpriv ", at: t)) {
                let e = v.search(" s1 ", from: t) ?? v.search(" s2 ", from: t) ?? v.count
                if let w = v.search(" write", from: t), w < e { s.record.event.eventFlags.insert(.write) }
                smmu.remove(at: idx)
                finishSMMU(s, sink: &sink)
                return true
            }
            return false
        }
        // v2: `FSR    = 00000402 [TF ], SID=0x19c3`, `FAR    = 0x...`, `FSYNR0 = ...`, `SID = 0x..`,
        // `soft iova-to-phys=...`, `context bank#=0x1`.
        if v.hasPrefix("soft iova-to-phys", at: t) || v.hasPrefix("hard iova-to-phys", at: t)
            || v.hasPrefix("FSYNR1", at: t)
            || v.hasPrefix("PAR ", at: t) || v.hasPrefix("TTBR", at: t) || v.hasPrefix("SCTLR", at: t)
            || v.hasPrefix("CBAR", at: t) || v.hasPrefix("MAIR", at: t) || v.hasPrefix("Client info", at: t)
            || v.hasPrefix("ACTLR", at: t) || v.hasPrefix("CONTEXTIDR", at: t)
        {
            s.age = 0
            smmu[idx] = s
            return true
        }
        if v.hasPrefix("FSR", at: t) || v.hasPrefix("FAR", at: t) || v.hasPrefix("FSYNR0", at: t)
            || v.hasPrefix("SID", at: t)
            || v.hasPrefix("context bank#", at: t) || v.hasPrefix("CBFRSYNRA", at: t)
        {
            var copy = s
            guard let n = Self.applyV2Fields(&copy, v, t), n > 0 else { return false }
            copy.age = 0
            smmu[idx] = copy
            return true
        }
        return false
    }

    /// Emits SMMU records that waited too long among unrelated lines.
    private mutating func expireSMMU(sink: inout some EventSink) {
        while let i = smmu.firstIndex(where: { $0.age > Self.smmuWindow }) {
            finishSMMU(smmu.remove(at: i), sink: &sink)
        }
    }

    private mutating func finishSMMU(_ s: PendingSMMU, sink: inout some EventSink) {
        var r = s.record
        let line = r.event.position
        if s.v3 {
            if s.dwords.count == 4 {
                let q = s.dwords
                let id = UInt8(truncatingIfNeeded: q[0] & 0xFF)
                if r.event.detail == 0 { r.event.detail = id }
                // EVTQ_0_SID [63:32], EVTQ_0_SSV [11], EVTQ_0_SSID [31:12], EVTQ_1_RnW [35] (1 = read),
                // EVTQ_2_ADDR, EVTQ_3_IPA [51:12] (arm-smmu-v3.h).
                if r.event.aux == Event.noString { r.event.aux = UInt32(truncatingIfNeeded: q[0] >> 32) }
                if q[0] & (1 << 11) != 0 && r.event.size == 0 { r.event.size = (q[0] >> 12) & 0xFFFFF }
                let translationClass: Set<UInt8> = [0x05, 0x07, 0x10, 0x11, 0x12, 0x13]
                if !s.decoded {
                    if translationClass.contains(r.event.detail) {
                        r.event.address = q[2]
                        r.event.address2 = q[3] & 0x000F_FFFF_FFFF_F000
                        if q[1] & (1 << 35) == 0 { r.event.eventFlags.insert(.write) }
                    } else if [0x03, 0x09, 0x0b, 0x25].contains(r.event.detail) {
                        r.event.address2 = q[3] & 0x000F_FFFF_FFFF_FFF8
                    }
                }
            } else if !s.decoded {
                bad(line, "SMMUv3 event dump with \(s.dwords.count) of 4 dwords")
                return
            }
            if r.device == nil && r.event.aux != Event.noString {
                let sid = r.event.aux
                r.device = ("smmu-sid-" + Hex.prefixed(sid), UInt16(truncatingIfNeeded: sid))
            }
            if r.event.aux == Event.noString {
                bad(line, "SMMUv3 event without a stream id")
                return
            }
            r.aux2String = Self.smmuNames[UInt32(r.event.detail)] ?? "event " + Hex.prefixed(r.event.detail)
            r.name = "smmuv3_event"
            store(r, sink: &sink)
            return
        }
        guard s.hasAddress else {
            bad(line, "SMMU context fault without an address (no iova= or FAR)")
            return
        }
        if r.event.address2 == Self.noAddressMark { r.event.address2 = 0 }
        if r.device == nil && r.event.aux2 != Event.noString {
            let sid = r.event.aux2
            r.device = ("smmu-sid-" + Hex.prefixed(sid), UInt16(truncatingIfNeeded: sid))
        }
        store(r, sink: &sink)
    }

    // MARK: swiotlb

    /// `<drv> <dev>: swiotlb buffer is full (sz: N bytes)[, total N (slots), used N (slots)]`.
    private func swiotlbFull(_ v: LineView, _ m: Int, _ r: Int, _ ts: UInt64, _ line: UInt64) -> DmesgDecode {
        guard let k = v.search("(sz: ", from: r) else {
            return v.skipSpaces(r + 22) >= v.count
                ? .incomplete("swiotlb-full line ends before its size", partial: nil)
                : .malformed("swiotlb-full line without (sz: N bytes)")
        }
        var j = k + 5
        if v.skipSpaces(j) >= v.count { return .incomplete("swiotlb-full line ends before its size", partial: nil) }
        guard let size = v.dec(&j), v.hasPrefix(" bytes)", at: j) else {
            return j >= v.count - 6 && v.string(j, v.count).allSatisfy({ " bytes)".contains($0) })
                ? .incomplete("swiotlb-full line ends inside its size", partial: nil)
                : .malformed("swiotlb-full line with a malformed size")
        }
        var ev = event(.swiotlbFull, ts, line)
        ev.size = size
        ev.flags |= EventFlags.error.rawValue
        if let t = v.search("total ", from: j) {
            var a = t + 6
            guard let total = v.dec(&a), let u = v.search("used ", from: a) else {
                return .incomplete("swiotlb-full line ends inside its slot counts", partial: nil)
            }
            var b = u + 5
            guard let used = v.dec(&b) else {
                return .incomplete("swiotlb-full line ends inside its slot counts", partial: nil)
            }
            ev.aux = UInt32(truncatingIfNeeded: min(total, UInt64(UInt32.max)))
            ev.aux2 = UInt32(truncatingIfNeeded: min(used, UInt64(UInt32.max)))
        } else if v.hasPrefix(", total", at: j + 7) || v.hasPrefix(",", at: j + 7) {
            return .incomplete("swiotlb-full line ends inside its slot counts", partial: nil)
        }
        return .record(DmesgRecord(event: ev, device: Self.devicePrefix(v, m, r), name: "swiotlb_buffer_full"))
    }

    /// `DMA: Out of SW-IOMMU space for N bytes at device X` (2.6/3.x) or `<drv> <dev>: DMA: Out of SW-IOMMU
    /// space for N bytes` (3.x–4.x).
    private func swiotlbOutOfSpace(_ v: LineView, _ m: Int, _ r: Int, _ ts: UInt64, _ line: UInt64) -> DmesgDecode {
        var j = r + 26
        if v.skipSpaces(j) >= v.count {
            return .incomplete("Out of SW-IOMMU space line ends before its size", partial: nil)
        }
        guard let size = v.dec(&j) else { return .malformed("Out of SW-IOMMU space line with a malformed size") }
        var ev = event(.swiotlbFull, ts, line)
        ev.size = size
        ev.flags |= EventFlags.error.rawValue
        var dev: (name: String, sid: UInt16?)?
        if let a = v.search(" at device ", from: j) {
            let s = a + 11
            let e = v.tokenEnd(s)
            if e > s && !v.equals(s, e, "?") { dev = Self.deviceRef(v, s, e) }
        } else {
            let d = v.search("DMA: ", from: m).map { $0 < r ? $0 : r } ?? r
            dev = Self.devicePrefix(v, m, d)
        }
        return .record(DmesgRecord(event: ev, device: dev, name: "swiotlb_out_of_space"))
    }

    /// `<drv> <dev>: overflow 0x...+N of DMA mask M bus limit L` (5.x kernel/dma/direct.c report_addr, `bus
    /// mask` before 5.5) and `DMA addr 0x...+N overflow (mask M, bus limit L).` / `swiotlb addr ...`
    /// (5.x+ kernel/dma/direct.h, swiotlb.c).
    private func dmaOverflow(_ v: LineView, _ m: Int, _ r: Int, _ ts: UInt64, _ line: UInt64) -> DmesgDecode {
        var addrAt: Int
        var start: Int
        if let a = v.search(" addr ", from: m), a < r {
            addrAt = a + 6
            start = a
            while start > m && v[start - 1] != 0x20 { start -= 1 }
        } else {
            addrAt = r + 8
            start = r
        }
        addrAt = v.skipSpaces(addrAt)
        guard let addr = v.hex(&addrAt), addrAt < v.count, v[addrAt] == 0x2B else {
            return .malformed("DMA overflow line with a malformed address+size")
        }
        var j = addrAt + 1
        guard let size = v.dec(&j) else { return .malformed("DMA overflow line with a malformed size") }
        guard let mk = v.search("mask ", from: j) else {
            return .incomplete("DMA overflow line ends before its mask", partial: nil)
        }
        var k = mk + 5
        guard let mask = v.hex(&k) else { return .incomplete("DMA overflow line ends inside its mask", partial: nil) }
        var ev = event(.dmaMapError, ts, line)
        ev.address = addr
        ev.size = size
        ev.address2 = mask
        ev.flags |= EventFlags.error.rawValue
        return .record(DmesgRecord(event: ev, device: Self.devicePrefix(v, m, start), name: "dma_overflow"))
    }

    // MARK: DMA-API debug

    /// Message prefixes of kernel/dma/debug.c in the order of DMADebugCheck (linux v6.19 kernel/dma/debug.c) (the index + 1 is the rule id).
    private static let dmaDebugRules: [StaticString] = [
        "device driver tries to free an invalid DMA memory address",
        "device driver tries to free DMA memory it has not allocated",
        "device driver frees DMA memory with different size",
        "device driver frees DMA memory with wrong function",
        "device driver frees DMA memory with different CPU address",
        "device driver frees DMA sg list with different entry count",
        "device driver frees DMA memory with different direction",
        "device driver failed to check map error",
        "device driver maps memory from stack",
        "device driver maps memory from kernel text or rodata",
        "device driver maps memory from invalid area",
        "device driver maps memory from vmalloc area",
        "device driver tries to sync DMA memory it has not allocated",
        "device driver syncs DMA memory outside allocated range",
        "device driver syncs DMA memory with different direction",
        "device driver syncs device read-only DMA memory for cpu",
        "device driver syncs device write-only DMA memory to device",
        "device driver syncs DMA sg list with different entry count",
        "mapping sg segment longer than device claims to support",
        "mapping sg segment across boundary",
        "cacheline tracking EEXIST, overlapping mappings aren't supported",
        "exceeded ",
        "device driver has pending DMA allocations while released from device",
        "cpu touching an active dma mapped cacheline"
    ]

    private func dmaDebug(_ v: LineView, _ m: Int, _ r: Int, _ ts: UInt64, _ line: UInt64) -> DmesgDecode {
        var ev = event(.dmaDebugWarning, ts, line)
        var msg = r + 9
        var rec = DmesgRecord(event: ev, name: "dma_api_debug")
        // `DMA-API: <drv> <dev>: message` (err_printk) or `<drv> <dev>: DMA-API: message` (older / dev_*).
        let d1 = v.tokenEnd(msg)
        let d2s = v.skipSpaces(d1)
        let d2e = v.tokenEnd(d2s)
        if d2e > d2s && v[d2e - 1] == 0x3A && d1 < v.count && v[d1 - 1] != 0x3A {
            rec.device = Self.deviceRef(v, d2s, d2e - 1)
            msg = v.skipSpaces(d2e)
        } else if let d = Self.devicePrefix(v, m, r) {
            rec.device = d
        }
        var rule: UInt32 = 0
        var prefixOfRule = false
        let rest = v.string(msg, v.count)
        for (k, p) in Self.dmaDebugRules.enumerated() {
            if v.hasPrefix(p, at: msg) { rule = UInt32(k + 1); break }
            if !rest.isEmpty && rest.count >= 12 && "\(p)".hasPrefix(rest) { prefixOfRule = true }
        }
        if rule == 0 {
            if prefixOfRule { return .incomplete("DMA-API warning cut inside its message", partial: nil) }
            // Not a check message (e.g. `DMA-API: debugging enabled by kernel config`): a boot fact.
            return .ignored("fact:dma_api_debug")
        }
        // Wrapped inside a `[...]` value: the rest is on the next line.
        var open = 0
        for i in msg..<v.count {
            if v[i] == 0x5B { open += 1 } else if v[i] == 0x5D && open > 0 { open -= 1 }
        }
        if open > 0 { return .incomplete("DMA-API warning cut inside a [...] value", partial: nil) }
        if var k = v.search("device address=", from: msg) {
            k += 15
            guard let a = v.hex(&k) else { return .malformed("DMA-API warning with a malformed device address") }
            ev.address = a
        }
        if var k = v.search("[size=", from: msg) {
            k += 6
            guard let n = v.dec(&k) else { return .malformed("DMA-API warning with a malformed size") }
            ev.size = n
        } else if var k = v.search("[map size=", from: msg) {
            k += 10
            guard let n = v.dec(&k) else { return .malformed("DMA-API warning with a malformed size") }
            ev.size = n
        }
        // `[mapped with DMA_TO_DEVICE]` (direction checks), `[from kernel direction=...]`: the mapping's direction.
        if let k = v.search("[mapped with ", from: msg) {
            let s = k + 13
            var e = s
            while e < v.count && v[e] != 0x5D { e += 1 }
            if let d = DMADirection(kernelName: v.string(s, e)) { ev.direction = d }
        }
        // The rule text without the bracketed values keeps the string table small.
        var end = msg
        while end < v.count && v[end] != 0x5B { end += 1 }
        while end > msg && v[end - 1] == 0x20 { end -= 1 }
        // A message wrapped by a tab-indented continuation reads back with a single blank.
        rec.auxString = v.string(msg, end).split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
        ev.aux2 = rule
        rec.event = ev
        return .record(rec)
    }

    // MARK: virtio

    private mutating func virtioProbe(_ v: LineView, _ m: Int, _ ts: UInt64, _ line: UInt64, sink: inout some EventSink)
    {
        var ev = event(.virtioProbe, ts, line)
        // `<drv> <dev>: message`: the device is the token before the first ": ".
        var devName: String?
        if let c = v.search(": ", from: m) {
            var s = c
            while s > m && v[s - 1] != 0x20 { s -= 1 }
            devName = v.string(s, c)
        }
        var msgStart = m
        if let c = v.search(": ", from: m) { msgStart = c + 2 }
        if let k = v.search("probe of ", from: m) {
            // `virtio_blk: probe of virtio0 failed with error -22`
            let ds = k + 9
            devName = v.string(ds, v.tokenEnd(ds))
            msgStart = m
        }
        if let k = v.search("device refuses features", from: m) {
            ev.detail = ProbeResult.refusedFeatures.rawValue
            msgStart = k
        } else if let k = v.search("device must provide VIRTIO_F_", from: m) {
            ev.detail = ProbeResult.failed.rawValue
            msgStart = k
        } else if let k = v.search(" failed with error ", from: m) {
            var j = k + 19
            guard let err = v.signedDec(&j) else { bad(line, "malformed probe failure: \(v.text())"); return }
            ev.detail = ProbeResult.failed.rawValue
            ev.aux2 = UInt32(truncatingIfNeeded: err < 0 ? -err : err)
        }
        guard let name = devName, name.hasPrefix("virtio") || v.search("virtio", from: m) != nil else {
            fact("probe_failure")
            return
        }
        var info = DeviceInfo(name: name)
        if v.search("VIRTIO_F_ACCESS_PLATFORM", from: m) != nil { info.iommuPlatform = false }
        ev.device = sink.device(info)
        ev.flags |= EventFlags.error.rawValue
        ev.aux = sink.intern(v.string(msgStart, v.count))
        understood("virtio_probe")
        put(&sink, ev)
    }

    // MARK: Boot facts

    private mutating func bootFact(_ v: LineView, _ m: Int, _ ts: UInt64, _ line: UInt64, sink: inout some EventSink) {
        if v.hasPrefix("Linux version ", at: m) {
            let s = m + 14
            sink.metadata.capture.kernelRelease = v.string(s, v.tokenEnd(s))
            fact("kernel_release")
        } else if v.hasPrefix("Command line: ", at: m) || v.hasPrefix("Kernel command line: ", at: m) {
            let s = v.hasPrefix("Command line: ", at: m) ? m + 14 : m + 21
            let cmdline = v.string(s, v.count)
            if sink.metadata.capture.kernelCommandLine == nil { commandLine(cmdline, sink: &sink) }
            sink.metadata.capture.kernelCommandLine = cmdline
            fact("command_line")
        } else if v.hasPrefix("DMAR: IOMMU enabled", at: m) {
            sink.metadata.capture.viommu = sink.metadata.capture.viommu ?? "intel-iommu"
            if sink.metadata.capture.guestIOMMU == nil || sink.metadata.capture.guestIOMMU == .off {
                sink.metadata.capture.guestIOMMU = .translated
            }
            iommuOff = false
            evidence("viommu", v, m, line, sink: &sink)
            fact("iommu_enabled")
        } else if v.hasPrefix("DMAR: IOMMU disabled", at: m) || v.hasPrefix("AMD-Vi: AMD IOMMU disabled", at: m) {
            // intel_iommu=off (printed whether or not the platform has a DMAR table): DMA addresses are GPAs.
            sink.metadata.capture.guestIOMMU = .off
            sink.metadata.capture.flushPolicy = nil
            iommuOff = true
            evidence("guest-iommu", v, m, line, sink: &sink)
            fact("iommu_disabled")
        } else if v.hasPrefix("DMAR: ", at: m),
            v.search("No supported address widths. Not attempting DMA translation", from: m) != nil
        {
            // QEMU's intel-iommu with dma-translation=off advertises no SAGAW; Linux then uses the unit for
            // interrupt remapping only (drivers/iommu/intel/dmar.c alloc_iommu(), v5.17 onwards).
            sink.metadata.capture.viommu = sink.metadata.capture.viommu ?? "intel-iommu"
            if sink.metadata.capture.viommuProperties["dma-translation"] == nil {
                sink.metadata.capture.viommuProperties["dma-translation"] = "off"
            }
            evidence("dma-translation", v, m, line, sink: &sink)
            fact("dma_translation_off")
        } else if v.hasPrefix("DMAR: Intel(R) Virtualization Technology", at: m)
            || v.hasPrefix("DMAR: Host address width", at: m)
        {
            sink.metadata.capture.viommu = sink.metadata.capture.viommu ?? "intel-iommu"
            fact("dmar")
        } else if v.hasPrefix("iommu: Default domain type: ", at: m) {
            // Printed by iommu_subsys_init() whether or not an IOMMU driver is active.
            let s = m + 28
            if !iommuOff {
                if v.hasPrefix("Passthrough", at: s) {
                    sink.metadata.capture.guestIOMMU = .passthrough
                } else if v.hasPrefix("Translated", at: s) {
                    sink.metadata.capture.guestIOMMU = .translated
                }
                evidence("guest-iommu", v, m, line, sink: &sink)
            }
            fact("default_domain")
        } else if v.hasPrefix("iommu: DMA domain TLB invalidation policy: ", at: m) {
            let s = m + 43
            if !iommuOff {
                if v.hasPrefix("strict", at: s) { sink.metadata.capture.flushPolicy = .strict }
                if v.hasPrefix("lazy", at: s) { sink.metadata.capture.flushPolicy = .lazy }
                evidence("flush", v, m, line, sink: &sink)
            }
            fact("flush_policy")
        } else if v.search("AMD-Vi: Using strict mode due to virtualization", from: m) != nil && !iommuOff {
            sink.metadata.capture.flushPolicy = .strict
            evidence("flush", v, m, line, sink: &sink)
            fact("flush_policy")
        } else if let k = v.search(": Adding to iommu group ", from: m) {
            var g = k + 24
            var s = k
            while s > m && v[s - 1] != 0x20 { s -= 1 }
            var j = s
            guard let group = v.dec(&g), let groupNumber = Int(exactly: group), let (name, sid) = Self.parseBDF(v, &j),
                j == k
            else {
                bad(line, "malformed iommu group line: \(v.text())")
                return
            }
            let dev = sink.device(DeviceInfo(name: name, sid: sid, iommuGroup: groupNumber, behindIOMMU: true))
            var ev = event(.iommuGroupAdd, ts, line)
            ev.device = dev
            ev.aux = UInt32(truncatingIfNeeded: group)
            understood("iommu_group")
            put(&sink, ev)
        } else if v.hasPrefix("pci ", at: m), let k = v.search(": [", from: m + 4) {
            // `pci 0000:00:02.0: [1af4:1042] type 00 class 0x010000`
            var j = m + 4
            var h = k + 3
            guard let (name, sid) = Self.parseBDF(v, &j), j == k, let vendor = v.hex(&h), h < v.count, v[h] == 0x3A
            else { diagnostics.comments += 1; return }
            h += 1
            guard let device = v.hex(&h), h < v.count, v[h] == 0x5D, vendor <= 0xFFFF, device <= 0xFFFF else {
                diagnostics.comments += 1
                return
            }
            var info = DeviceInfo(name: name, sid: sid, vendorID: UInt16(vendor), deviceID: UInt16(device))
            if vendor == 0x1AF4 {
                info.virtioType = Self.virtioType(UInt16(device))
                if device >= 0x1040 { info.transport = .modern }
            }
            _ = sink.device(info)
            fact("pci_device")
        } else if v.search("AMD-Vi: Found IOMMU", from: m) != nil {
            sink.metadata.capture.viommu = sink.metadata.capture.viommu ?? "amd-iommu"
            evidence("viommu", v, m, line, sink: &sink)
            fact("amd_iommu")
        } else if v.hasPrefix("arm-smmu-v3 ", at: m) {
            sink.metadata.capture.viommu = sink.metadata.capture.viommu ?? "smmuv3"
            fact("smmuv3")
        } else if v.hasPrefix("ACPI: VIOT ", at: m) {
            // The firmware describes a virtio-iommu (QEMU hw/acpi/viot.c, x86 since 6.2) whether or not the guest
            // has its driver: the vIOMMU exists; IOMMUAttachment tells whether anything was attached to it.
            sink.metadata.capture.viommu = sink.metadata.capture.viommu ?? "virtio-iommu"
            evidence("viommu", v, m, line, sink: &sink)
            fact("viot")
        } else if v.hasPrefix("virtio_iommu ", at: m) {
            sink.metadata.capture.viommu = sink.metadata.capture.viommu ?? "virtio-iommu"
            fact("virtio_iommu")
        } else if v.hasPrefix("software IO TLB: ", at: m) {
            fact("swiotlb")
        } else {
            diagnostics.comments += 1
        }
    }

    /// What the command line says about IOMMU and swiotlb (later explicit log lines override it).
    private mutating func commandLine(_ cmdline: String, sink: inout some EventSink) {
        for token in cmdline.split(separator: " ") {
            switch token {
            case "iommu=pt", "iommu.passthrough=1": sink.metadata.capture.guestIOMMU = .passthrough
            case "iommu.passthrough=0": sink.metadata.capture.guestIOMMU = .translated
            case "iommu.strict=1": sink.metadata.capture.flushPolicy = .strict
            case "iommu.strict=0": sink.metadata.capture.flushPolicy = .lazy
            case "intel_iommu=off", "amd_iommu=off", "iommu=off":
                sink.metadata.capture.guestIOMMU = .off
                iommuOff = true
            case "swiotlb=force": sink.metadata.capture.swiotlbForced = true
            default:
                if token.hasPrefix("intel_iommu=") && token.contains("strict") {
                    sink.metadata.capture.flushPolicy = .strict
                }
            }
        }
    }

    /// Virtio device type from the PCI device id (legacy 0x1000–0x103f, modern 0x1040 + type).
    static func virtioType(_ id: UInt16) -> String? {
        let legacy: [UInt16: String] = [
            0x1000: "net", 0x1001: "block", 0x1002: "balloon", 0x1003: "console", 0x1004: "scsi", 0x1005: "rng",
            0x1009: "9p"
        ]
        let modern: [UInt16: String] = [
            1: "net", 2: "block", 3: "console", 4: "rng", 5: "balloon", 8: "scsi", 9: "9p", 16: "gpu", 18: "input",
            19: "vsock", 20: "crypto", 23: "iommu", 26: "fs", 27: "pmem", 41: "sound"
        ]
        if id >= 0x1040 { return modern[id - 0x1040] }
        return legacy[id]
    }
}
