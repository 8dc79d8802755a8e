import TraceFormat

/// Imports a guest kernel log (`dmesg`, `journalctl -k -o short-monotonic` without the host part, a serial
/// console capture): IOMMU faults, DMA-API debug warnings, virtio probe failures and boot facts
/// (Linux dmar.c/amd_iommu.c/arm-smmu-v3.c/virtio-iommu.c fault prints of each era, printk timestamps).
///
/// - Intel DMAR faults of every era, including the two-line 4.4 form. **The fault reason is decimal before
///   5.14/5.15 (`[fault reason 06]`, `37` for 0x25) and hex after (`[fault reason 0x06]`)**: a reason with
///   `0x` is read as hex, any other as decimal.
/// - AMD-Vi `Event logged [...]` in the old, device-prefixed and PCI-segment forms.
/// - ARM SMMUv3 raw event dumps (4 dwords) and the decoded ≥6.15 lines (merged into one fault).
/// - DMA-API debug (`DMA-API: <drv> <dev>: ...` and `<drv> <dev>: DMA-API: ...`).
/// - virtio: `device refuses features`, `device must provide VIRTIO_F_*`, probe failures.
/// - Boot facts into ``TraceMetadata/capture`` and the device table: kernel release, command line (and
///   what it implies: `iommu=pt`, `iommu.strict=`, `swiotlb=force`), `DMAR: IOMMU enabled`, default domain
///   type, strict/lazy, `Adding to iommu group N`, PCI ids.
///
/// Each fault becomes a ``EventKind/guestFault``: address, aux = reason (VT-d fault reason, AMD-Vi event
/// type, SMMUv3 event id), aux2 = interned reason text, detail = ``FaultSource``, `.write` for writes.
public struct DmesgImporter: Importer {
    public static let formatID = "dmesg"

    public init() {}

    /// Lines with a `[ seconds.micro]` prefix, and kernel-log phrases.
    public static func sniff(_ head: UnsafeRawBufferPointer) -> Int {
        var lines = 0
        var stamped = 0
        var phrases = 0
        var stop = false
        var n: UInt64 = 0
        _ = IngestInput.scanLines(head, final: false, line: &n) { raw, _ in
            if stop { return }
            let v = LineView(raw)
            if v.count == 0 { return }
            if v.hasControlBytes() { stop = true; lines = 0; return }
            lines += 1
            var i = 0
            if prefix(v, &i) != nil { stamped += 1 }
            if v.search("Linux version ", from: i) != nil || v.search("DMAR:", from: i) != nil
                || v.search("Command line:", from: i) != nil || v.search("AMD-Vi:", from: i) != nil
                || v.search("arm-smmu-v3", from: i) != nil || v.search("DMA-API:", from: i) != nil
            { phrases += 1 }
            if lines >= 200 { stop = true }
        }
        guard lines > 0 else { return 0 }
        if stamped * 2 >= lines { return phrases > 0 ? 85 : 70 }
        return phrases * 4 >= lines ? 40 : 0
    }

    /// Skips `<6>` and `[  12.345678]` (and a `[ T123]` caller id); returns the timestamp in ns, if any.
    static func prefix(_ v: LineView, _ i: inout Int) -> UInt64? {
        var j = 0
        if j < v.count && v[j] == 0x3C {  // <level>
            var k = j + 1
            if v.dec(&k) != nil, k < v.count, v[k] == 0x3E { j = k + 1 }
        }
        var ts: UInt64?
        if j < v.count && v[j] == 0x5B {
            var k = v.skipSpaces(j + 1)
            if let t = v.seconds(&k), k < v.count, v[k] == 0x5D {
                ts = t
                j = k + 1
                // CONFIG_PRINTK_CALLER: `[    T1]` / `[    C0]`.
                if j < v.count && v[j] == 0x5B {
                    var c = v.skipSpaces(j + 1)
                    if c < v.count && (v[c] == 0x54 || v[c] == 0x43) {
                        c += 1
                        if v.dec(&c) != nil, c < v.count, v[c] == 0x5D { j = c + 1 }
                    }
                }
                if j < v.count && v[j] == 0x20 { j += 1 }
            }
        }
        i = j
        return ts
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
            throw .badFormat(path: input.path, offset: 0, reason: "not a kernel log: \(p.binaryLines) of \(p.lines) lines hold binary data")
        }
        diagnostics.merge(p.diagnostics)
    }
}

/// Per-input state of the dmesg parser (faults that span lines are completed here).
struct DmesgParser {
    let path: String
    let source: UInt16
    let clock: UInt8
    var diagnostics = IngestDiagnostics()
    private(set) var sinkError: String?
    private(set) var lines = 0
    private(set) var recognised = 0
    private(set) var binaryLines = 0

    /// A 4.4-era DMAR fault whose `[fault reason NN]` comes on the next line.
    private var pendingIntel: Event?
    /// The guest said its IOMMU driver is off (`DMAR: IOMMU disabled`, `intel_iommu=off`): the default domain
    /// type line that follows describes domains that are never created.
    private var iommuOff = false
    /// An SMMUv3 event being assembled from its raw dump and decoded lines.
    private var smmu: PendingSMMU?

    private struct PendingSMMU {
        var event: Event
        var id: UInt32
        var dwords: [UInt64] = []
        var decoded = false
        var deviceName: String?
    }

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

    /// `0000:00:05.0` from bus/dev/fn, with the PCI requester id.
    static func pciName(segment: UInt64 = 0, bus: UInt64, dev: UInt64, fn: UInt64) -> (String, UInt16) {
        func hex(_ x: UInt64, _ w: Int) -> String {
            let s = String(x, radix: 16)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        let name = "\(hex(segment, 4)):\(hex(bus, 2)):\(hex(dev, 2)).\(String(fn, radix: 16))"
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

    /// The requester id of a PCI name like `0000:00:02.0`, if it is one.
    static func sid(ofPCIName name: String) -> UInt16? {
        var bytes = Array(name.utf8)
        return bytes.withUnsafeMutableBufferPointer { b -> UInt16? in
            guard let base = b.baseAddress else { return nil }
            let v = LineView(base: UnsafePointer(base), count: b.count)
            var i = 0
            guard let (_, sid) = parseBDF(v, &i), i == v.count else { return nil }
            return sid
        }
    }

    private mutating func pciDevice(_ name: String, _ sid: UInt16, sink: inout some EventSink) -> UInt16 {
        sink.device(DeviceInfo(name: name, sid: sid))
    }

    mutating func flush(sink: inout some EventSink) {
        if let p = pendingIntel {
            put(&sink, p)
            pendingIntel = nil
        }
        if let s = smmu {
            emitSMMU(s, sink: &sink)
            smmu = nil
        }
    }

    mutating func parse(_ v: LineView, line: UInt64, sink: inout some EventSink) {
        lines += 1
        if v.count == 0 { diagnostics.comments += 1; return }
        if v.hasControlBytes() {
            binaryLines += 1
            bad(line, "binary data in a text input")
            return
        }
        var m = 0
        var ts = DmesgImporter.prefix(v, &m) ?? 0
        // journalctl -k: `Nov 25 10:00:00 host kernel: msg` (or `[  12.3] host kernel: msg` with
        // -o short-monotonic): the message starts after `kernel: `.
        if let k = v.search(" kernel: ", from: m), k < m + 64, !v.hasPrefix("DMAR", at: m) {
            let j = k + 9
            var skip = 0
            if ts == 0, let t = DmesgImporter.prefix(LineView(base: v.base + j, count: v.count - j), &skip) {
                ts = t
            } else {
                skip = 0
            }
            m = j + skip
        }

        // Continuations first: they decide whether a pending multi-line fault is complete.
        if var p = pendingIntel {
            pendingIntel = nil
            if let r = v.search("[fault reason ", from: m) {
                var k = r + 14
                if let reason = v.hexOrDec(&k) {
                    p.aux = UInt32(truncatingIfNeeded: reason)
                    let t = v.skipSpaces(k < v.count && v[k] == 0x5D ? k + 1 : k)
                    p.aux2 = sink.intern(v.string(t, v.count))
                }
                put(&sink, p)
                return
            }
            put(&sink, p)
        }
        if smmu != nil && smmuContinuation(v, m, sink: &sink) { return }

        if let r = v.search("Request device [", from: m) {
            intelFault(v, m, r, ts, line, sink: &sink)
        } else if let r = v.search("AMD-Vi: Event logged [", from: m) {
            amdFault(v, m, r, ts, line, sink: &sink)
        } else if let r = v.search("arm-smmu-v3 ", from: m), let e = v.search(": event 0x", from: r) {
            var k = e + 10
            guard let id = v.hex(&k) else { bad(line, "malformed SMMUv3 event line"); return }
            var ev = event(.guestFault, ts, line)
            ev.detail = FaultSource.smmuv3.rawValue
            ev.aux = UInt32(truncatingIfNeeded: id)
            smmu = PendingSMMU(event: ev, id: UInt32(truncatingIfNeeded: id))
        } else if let r = v.search("arm-smmu-v3 ", from: m), let e = v.search(": event: ", from: r) {
            var ev = event(.guestFault, ts, line)
            ev.detail = FaultSource.smmuv3.rawValue
            smmu = PendingSMMU(event: ev, id: 0)
            _ = smmuDecoded(v, e + 2, sink: &sink)
        } else if let r = v.search("DMA-API: ", from: m) {
            dmaDebug(v, m, r, ts, line, sink: &sink)
        } else if v.search("device refuses features", from: m) != nil || v.search("device must provide VIRTIO_F_", from: m) != nil
            || v.search(" failed with error ", from: m) != nil
        {
            virtioProbe(v, m, ts, line, sink: &sink)
        } else {
            bootFact(v, m, ts, line, sink: &sink)
        }
    }

    // MARK: Intel VT-d

    private mutating func intelFault(
        _ v: LineView, _ m: Int, _ r: Int, _ ts: UInt64, _ line: UInt64, sink: inout some EventSink
    ) {
        let write = v.search("DMA Write", from: m).map { $0 < r } ?? false
        let read = v.search("DMA Read", from: m).map { $0 < r } ?? false
        let intr = v.search("INTR-REMAP", from: m).map { $0 < r } ?? false
        guard write || read || intr else { bad(line, "DMAR fault line without a request type: \(v.text())"); return }
        var i = r + 16
        guard let (name, sid) = Self.parseBDF(v, &i), i < v.count, v[i] == 0x5D else {
            bad(line, "DMAR fault line with a malformed device: \(v.text())")
            return
        }
        var addr: UInt64 = 0
        if let k = v.search("fault addr ", from: i) {
            var j = k + 11
            guard let a = v.hex(&j) else { bad(line, "DMAR fault line with a malformed address: \(v.text())"); return }
            addr = a
            i = j
        } else if let k = v.search("fault index ", from: i) {
            var j = k + 12
            guard let a = v.hex(&j) else { bad(line, "DMAR fault line with a malformed index: \(v.text())"); return }
            addr = a
            i = j
        } else {
            bad(line, "DMAR fault line without an address: \(v.text())")
            return
        }
        var ev = event(.guestFault, ts, line)
        ev.detail = FaultSource.vtd.rawValue
        ev.device = pciDevice(name, sid, sink: &sink)
        ev.address = addr
        if write { ev.eventFlags.insert(.write) }
        understood(intr ? "dmar_intr_remap_fault" : "dmar_fault")
        if let k = v.search("[fault reason ", from: i) {
            var j = k + 14
            guard let reason = v.hexOrDec(&j), j < v.count, v[j] == 0x5D else {
                bad(line, "DMAR fault line with a malformed reason: \(v.text())")
                return
            }
            ev.aux = UInt32(truncatingIfNeeded: reason)
            let t = v.skipSpaces(j + 1)
            ev.aux2 = sink.intern(t < v.count ? v.string(t, v.count) : "")
            put(&sink, ev)
        } else {
            // 4.4/4.6: `DMAR:[fault reason 06] ...` follows on the next line.
            ev.aux2 = Event.noString
            pendingIntel = ev
        }
    }

    // MARK: AMD-Vi

    private static let amdTypes: [(StaticString, UInt32)] = [
        ("ILLEGAL_DEV_TABLE_ENTRY", 1), ("IO_PAGE_FAULT", 2), ("DEV_TAB_HARDWARE_ERROR", 3),
        ("PAGE_TAB_HARDWARE_ERROR", 4), ("ILLEGAL_COMMAND_ERROR", 5), ("COMMAND_HARDWARE_ERROR", 6),
        ("IOTLB_INV_TIMEOUT", 7), ("INVALID_DEVICE_REQUEST", 8), ("INVALID_PPR_REQUEST", 9),
        ("RMP_PAGE_FAULT", 0xd), ("RMP_HW_ERROR", 0xe),
    ]

    private mutating func amdFault(
        _ v: LineView, _ m: Int, _ r: Int, _ ts: UInt64, _ line: UInt64, sink: inout some EventSink
    ) {
        let s = r + 22
        var e = s
        while e < v.count && v[e] != 0x20 && v[e] != 0x5D { e += 1 }
        var type: UInt32 = 0
        for (n, t) in Self.amdTypes where v.equals(s, e, n) { type = t }
        var ev = event(.guestFault, ts, line)
        ev.detail = FaultSource.amdvi.rawValue
        ev.aux = type
        ev.aux2 = sink.intern(v.string(s, e))
        if let k = v.find("device=", from: e) {
            var j = k
            if let (name, sid) = Self.parseBDF(v, &j) { ev.device = pciDevice(name, sid, sink: &sink) }
        } else if r > m {
            // `<drv> 0000:00:05.0: AMD-Vi: Event logged [...]`
            var t = r - 1
            while t > m && v[t] == 0x20 { t -= 1 }
            if v[t] == 0x3A {
                var ds = t
                while ds > m && v[ds - 1] != 0x20 { ds -= 1 }
                var j = ds
                if let (name, sid) = Self.parseBDF(v, &j), j == t { ev.device = pciDevice(name, sid, sink: &sink) }
            }
        }
        var j = e
        if let k = v.find("address=", from: e) { j = k; ev.address = v.hex(&j) ?? 0 }
        if let k = v.find("flags=", from: e) {
            j = k
            let f = v.hex(&j) ?? 0
            if f & 0x20 != 0 { ev.eventFlags.insert(.write) }
        }
        understood("amdvi_event")
        put(&sink, ev)
    }

    // MARK: ARM SMMUv3

    private static let smmuNames: [UInt32: String] = [
        0x01: "F_UUT", 0x02: "C_BAD_STREAMID", 0x03: "F_STE_FETCH", 0x04: "C_BAD_STE", 0x05: "F_BAD_ATS_TREQ",
        0x06: "F_STREAM_DISABLED", 0x07: "F_TRANS_FORBIDDEN", 0x08: "C_BAD_SUBSTREAMID", 0x09: "F_CD_FETCH",
        0x0a: "C_BAD_CD", 0x0b: "F_WALK_EABT", 0x10: "F_TRANSLATION", 0x11: "F_ADDR_SIZE", 0x12: "F_ACCESS",
        0x13: "F_PERMISSION", 0x20: "F_TLB_CONFLICT", 0x21: "F_CFG_CONFLICT", 0x24: "E_PAGE_REQ", 0x25: "F_VMS_FETCH",
    ]

    /// Handles a line that may continue the pending SMMUv3 event; false when it does not (the pending
    /// event is then emitted and the line parsed on its own).
    private mutating func smmuContinuation(_ v: LineView, _ m: Int, sink: inout some EventSink) -> Bool {
        guard var s = smmu else { return false }
        if let r = v.search("arm-smmu-v3 ", from: m), let c = v.search(": ", from: r + 12) {
            let t = v.skipSpaces(c + 2)
            if s.dwords.count < 4 && !s.decoded && v.hasPrefix("0x", at: t) {
                var j = t
                if let q = v.hex(&j) {
                    s.dwords.append(q)
                    smmu = s
                    return true
                }
            }
            if v.hasPrefix("event: ", at: t) { return smmuDecoded(v, t, sink: &sink) }
            if s.decoded && (v.hasPrefix("priv ", at: t) || v.hasPrefix("unpriv ", at: t)) {
                if v.search(" write ", from: t) != nil { s.event.eventFlags.insert(.write) }
                smmu = nil
                emitSMMU(s, sink: &sink)
                return true
            }
        }
        smmu = nil
        emitSMMU(s, sink: &sink)
        return false
    }

    /// `event: F_TRANSLATION client: 0000:00:02.0 sid: 0x10 ssid: 0x0 iova: 0x1000000 ipa: 0x0`
    private mutating func smmuDecoded(_ v: LineView, _ t: Int, sink: inout some EventSink) -> Bool {
        guard var s = smmu else { return false }
        if s.decoded {  // a second decoded line: a new event
            emitSMMU(s, sink: &sink)
            var ev = s.event
            ev.address = 0
            ev.eventFlags = []
            s = PendingSMMU(event: ev, id: 0)
        }
        s.decoded = true
        let ns = t + 7
        let ne = v.tokenEnd(ns)
        if s.id == 0 {
            for (id, n) in Self.smmuNames where v.string(ns, ne) == n { s.id = id }
            s.event.aux = s.id
        }
        if let c = v.find("client: ", from: ne) {
            let ce = v.tokenEnd(c)
            var j = c
            if let (name, sid) = Self.parseBDF(v, &j), j == ce {
                s.event.device = pciDevice(name, sid, sink: &sink)
            } else if !v.hasPrefix("(unassigned", at: c) {
                s.event.device = sink.device(DeviceInfo(name: v.string(c, ce)))
            }
        }
        if let k = v.find("iova: ", from: ne) {
            var j = k
            if let a = v.hex(&j) { s.event.address = a }
        }
        smmu = s
        return true
    }

    private mutating func emitSMMU(_ s: PendingSMMU, sink: inout some EventSink) {
        var ev = s.event
        ev.aux = s.id
        if s.dwords.count == 4 {
            // q0 ID[7:0] SID[63:32]; q1 RnW bit 35 (1 = read) for translation-class faults; q2 address.
            if ev.address == 0 { ev.address = s.dwords[2] }
            if (0x10...0x13).contains(s.id) && s.dwords[1] & (1 << 35) == 0 { ev.eventFlags.insert(.write) }
            if !ev.hasDevice {
                // No client name in the raw form: keep the stream id as the device's sid, by name.
                let sid = UInt16(truncatingIfNeeded: s.dwords[0] >> 32)
                ev.device = sink.device(DeviceInfo(name: "smmu-sid-0x" + String(sid, radix: 16), sid: sid))
            }
        } else if !s.decoded {
            bad(ev.position, "SMMUv3 event dump with \(s.dwords.count) of 4 dwords")
            return
        }
        ev.aux2 = sink.intern(Self.smmuNames[s.id] ?? "event 0x" + String(s.id, radix: 16))
        understood("smmuv3_event")
        put(&sink, ev)
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
        "cpu touching an active dma mapped cacheline",
    ]

    private mutating func dmaDebug(
        _ v: LineView, _ m: Int, _ r: Int, _ ts: UInt64, _ line: UInt64, sink: inout some EventSink
    ) {
        var ev = event(.dmaDebugWarning, ts, line)
        var msg = r + 9
        // `DMA-API: <drv> <dev>: message` (err_printk) or `<drv> <dev>: DMA-API: message` (older / dev_*).
        let d1 = v.tokenEnd(msg)
        let d2s = v.skipSpaces(d1)
        let d2e = v.tokenEnd(d2s)
        var devStart = -1
        var devEnd = -1
        if d2e > d2s && v[d2e - 1] == 0x3A && d1 < v.count && v[d1 - 1] != 0x3A {
            devStart = d2s
            devEnd = d2e - 1
            msg = v.skipSpaces(d2e)
        } else if r > m {
            var t = r - 1
            while t > m && v[t] == 0x20 { t -= 1 }
            if v[t] == 0x3A {
                var s = t
                while s > m && v[s - 1] != 0x20 { s -= 1 }
                devStart = s
                devEnd = t
            }
        }
        if devStart >= 0 && devEnd > devStart {
            var j = devStart
            if let (name, sid) = Self.parseBDF(v, &j), j == devEnd {
                ev.device = pciDevice(name, sid, sink: &sink)
            } else {
                ev.device = sink.device(DeviceInfo(name: v.string(devStart, devEnd)))
            }
        }
        var rule: UInt32 = 0
        for (k, p) in Self.dmaDebugRules.enumerated() where v.hasPrefix(p, at: msg) {
            rule = UInt32(k + 1)
            break
        }
        if rule == 0 {
            // Not a check message (e.g. `DMA-API: debugging enabled by kernel config`): a boot fact.
            fact("dma_api_debug")
            return
        }
        if var k = v.search("device address=", from: msg) {
            k += 15
            ev.address = v.hex(&k) ?? 0
        }
        if var k = v.search("[size=", from: msg) {
            k += 6
            ev.size = v.dec(&k) ?? 0
        } else if var k = v.search("[map size=", from: msg) {
            k += 10
            ev.size = v.dec(&k) ?? 0
        }
        // The rule text without the bracketed values keeps the string table small.
        var end = msg
        while end < v.count && v[end] != 0x5B { end += 1 }
        while end > msg && v[end - 1] == 0x20 { end -= 1 }
        ev.aux = sink.intern(v.string(msg, end))
        ev.aux2 = rule
        understood("dma_api_debug")
        put(&sink, ev)
    }

    // MARK: virtio

    private mutating func virtioProbe(_ v: LineView, _ m: Int, _ ts: UInt64, _ line: UInt64, sink: inout some EventSink) {
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
        } else if v.hasPrefix("DMAR: Intel(R) Virtualization Technology", at: m) || v.hasPrefix("DMAR: Host address width", at: m) {
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
            guard let group = v.dec(&g), let groupNumber = Int(exactly: group), let (name, sid) = Self.parseBDF(v, &j), j == k
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
            0x1009: "9p",
        ]
        let modern: [UInt16: String] = [
            1: "net", 2: "block", 3: "console", 4: "rng", 5: "balloon", 8: "scsi", 9: "9p", 16: "gpu", 18: "input",
            19: "vsock", 20: "crypto", 23: "iommu", 26: "fs", 27: "pmem", 41: "sound",
        ]
        if id >= 0x1040 { return modern[id - 0x1040] }
        return legacy[id]
    }
}
