import TraceFormat

/// Imports QEMU log-backend trace output (`-trace ... -D file`, or stderr), (qemu trace/log backend: `pid@sec.usec:event args` lines).
///
/// Accepted line shapes:
/// - bare `name args` (no `-msg timestamp=on`);
/// - `TID@SEC.USEC:name args` (wall clock, converted to ns since the Unix epoch);
/// - `YYYY-MM-DDTHH:MM:SS.ffffffZ (TID) name args` (the 2025 ISO-8601 prefix);
/// - `# ...` comment lines (headers of excerpts), skipped;
/// - `error_report()` lines, with or without the ISO prefix (`... qemu-system-x86_64: vtd_iommu_translate:
///   detected translation failure (dev=00:05:00, iova=0x1000000)`): the VT-d translation failure becomes a
///   ``EventKind/hostFault`` (write bit from the `slpte permission error` line before it); other
///   messages are counted as ignored.
///
/// Arguments are read back through the event's trace-events format (``QEMUTraceEvents``), so each value is
/// bound to its argument name; ``QEMUEventMapper`` (shared with ``SimpletraceImporter``) makes the events.
/// Lines without a timestamp get timestamp 0. Provenance is the 1-based line number.
public struct QEMULogImporter: Importer {
    public static let formatID = "qemu-log"

    /// The definitions used to read arguments: ``QEMUTraceEvents/builtin`` plus any given file.
    public var traceEvents: QEMUTraceEvents

    /// Reads with the built-in QEMU 7.2 definitions.
    public init() { traceEvents = .builtin }

    /// Reads with the built-in definitions overridden and extended by `traceEvents` (the `--trace-events` file
    /// of the QEMU build that wrote the log, when the user has it).
    public init(traceEvents: QEMUTraceEvents) {
        var all = QEMUTraceEvents.builtin
        all.merge(traceEvents)
        self.traceEvents = all
    }

    /// Up to 95 when the first non-empty lines carry QEMU log prefixes (`TID@S.US:name`, ISO + `(TID)`,
    /// ISO + `qemu-system-*:`), 60 for bare lines naming known vIOMMU/virtio events, 0 otherwise.
    public static func sniff(_ head: UnsafeRawBufferPointer) -> Int {
        var lines = 0
        var best = 0
        var hits = 0
        var start = 0
        while start < head.count && lines < 20 {
            var end = start
            while end < head.count && head[end] != 0x0A { end += 1 }
            if end == head.count && start > 0 { break }  // partial last line of the head
            let line = UnsafeRawBufferPointer(rebasing: head[start..<end])
            start = end + 1
            if line.isEmpty { continue }
            lines += 1
            let parsed = LineShape(line)
            var score = 0
            switch parsed.prefix {
            case .tidTime: score = parsed.name != nil ? 95 : 0
            case .iso: score = parsed.name != nil || parsed.program != nil ? 90 : 0
            case .none:
                if parsed.program != nil {
                    score = 50
                } else if let name = parsed.name {
                    // The built-in definitions are parsed on first use (~11 M instructions, most of them the Swift
                    // runtime's first lookups of the generic types they use: 20 % of an `ingest` of a small ftrace
                    // file, callgrind): only for a line that is a bare event name.
                    let known = QEMUTraceEvents.builtin[name] != nil
                    if known || QEMUEventMapper.isKnownFamily(name) { score = known ? 60 : 40 }
                }
            }
            if score > 0 { hits += 1 }
            best = max(best, score)
        }
        guard lines > 0, hits * 2 >= lines else { return 0 }
        return best
    }

    public mutating func run(
        _ input: IngestInput, source: UInt16, clock: UInt8,
        into sink: inout some EventSink, diagnostics: inout IngestDiagnostics
    ) throws(IngestError) {
        var decoder = QEMULogDecoder(path: input.path, events: traceEvents, source: source, clock: clock)
        var failure: IngestError?
        input.forEachLine { line, number in
            guard failure == nil else { return }
            do {
                try decoder.line(line, number: number, sink: &sink, diagnostics: &diagnostics)
            } catch {
                failure = .unreadable(path: input.path, reason: "could not store events: \(error)")
            }
        }
        if let failure { throw failure }
        decoder.finish(diagnostics: &diagnostics)
        // A read error (truncated or corrupt compression, a decompression bomb) ended the pass early.
        try input.checkReadError()
        if sink.metadata.capture.viommu == nil, let kind = decoder.mapper.viommu {
            sink.metadata.capture.viommu = kind
        }
    }

    /// Decodes log text held in `bytes`: a pure function of the bytes for fuzzing and tests.
    public static func decode(
        _ bytes: [UInt8], path: String, events: QEMUTraceEvents = .builtin, source: UInt16 = 0, clock: UInt8 = 0,
        into sink: inout some EventSink, diagnostics: inout IngestDiagnostics
    ) throws(IngestError) {
        var importer = QEMULogImporter(traceEvents: events)
        try importer.run(
            IngestInput(path: path, bytes: bytes), source: source, clock: clock, into: &sink, diagnostics: &diagnostics)
    }
}

/// The prefix and name of one log line, found without allocating.
struct LineShape {
    enum Prefix { case none, tidTime, iso }
    var prefix: Prefix = .none
    /// Nanoseconds since the Unix epoch (wall clock) when the line has a time prefix.
    var timestamp: UInt64?
    /// Event name (identifier) when the line is a trace event.
    var name: String? { nameRange.map { String(decoding: UnsafeRawBufferPointer(rebasing: line[$0]), as: UTF8.self) } }
    /// Where the event name lies in the line.
    var nameRange: Range<Int>?
    private let line: UnsafeRawBufferPointer
    /// Offset of the argument text (after `name `).
    var bodyStart = 0
    /// `qemu-system-x86_64` when the line is an `error_report()` message.
    var program: String?
    /// Offset of the message after `program: `.
    var messageStart = 0

    init(_ b: UnsafeRawBufferPointer) {
        line = b
        let n = b.count
        var p = 0
        if let (t, next) = Self.tidTime(b) {
            prefix = .tidTime
            timestamp = t
            p = next
        } else if let (t, next) = Self.iso(b) {
            prefix = .iso
            timestamp = t
            p = next
            // `(TID) ` before a trace event
            if p < n && b[p] == 0x28 {
                var q = p + 1
                while q < n && b[q] >= 0x30 && b[q] <= 0x39 { q += 1 }
                if q > p + 1 && q + 1 < n && b[q] == 0x29 && b[q + 1] == 0x20 { p = q + 2 }
            }
        }
        // identifier, then a space or the end: a trace event
        var q = p
        while q < n && isIdentifierByte(b[q]) { q += 1 }
        if q > p && (q == n || b[q] == 0x20) && !(b[p] >= 0x30 && b[p] <= 0x39) {
            nameRange = p..<q
            bodyStart = q < n ? q + 1 : n
            return
        }
        // `program: message` (error_report): program = non-space run ending in ':' followed by a space
        var r = p
        while r < n && b[r] != 0x20 && b[r] != 0x3A { r += 1 }
        if r > p && r + 1 < n && b[r] == 0x3A && b[r + 1] == 0x20 {
            let program = String(decoding: UnsafeRawBufferPointer(rebasing: b[p..<r]), as: UTF8.self)
            if program.hasPrefix("qemu") {
                self.program = program
                messageStart = r + 2
            }
        }
    }

    /// `TID@SEC.FRAC:`
    static func tidTime(_ b: UnsafeRawBufferPointer) -> (UInt64, Int)? {
        let n = b.count
        var p = 0
        while p < n && b[p] >= 0x30 && b[p] <= 0x39 { p += 1 }
        guard p > 0, p < n, b[p] == 0x40 else { return nil }
        p += 1
        var sec: UInt64 = 0
        let secStart = p
        while p < n && b[p] >= 0x30 && b[p] <= 0x39 && p - secStart < 11 {  // < 2^64 ns
            sec = sec * 10 + UInt64(b[p] - 0x30)
            p += 1
        }
        guard p > secStart, p < n, b[p] == 0x2E else { return nil }
        p += 1
        let (frac, next) = fraction(b, p)
        guard next > p, next < n, b[next] == 0x3A else { return nil }
        return (sec &* 1_000_000_000 &+ frac, next + 1)
    }

    /// Digits after the decimal point as nanoseconds (at most 9 digits are significant).
    static func fraction(_ b: UnsafeRawBufferPointer, _ start: Int) -> (UInt64, Int) {
        var p = start
        var v: UInt64 = 0
        var digits = 0
        while p < b.count && b[p] >= 0x30 && b[p] <= 0x39 {
            if digits < 9 {
                v = v * 10 + UInt64(b[p] - 0x30)
                digits += 1
            }
            p += 1
        }
        while digits < 9 && p > start {
            v *= 10
            digits += 1
        }
        return (v, p)
    }

    /// `YYYY-MM-DDTHH:MM:SS[.f]Z ` → ns since the epoch and the offset after the space.
    static func iso(_ b: UnsafeRawBufferPointer) -> (UInt64, Int)? {
        guard b.count >= 21 else { return nil }
        func num(_ at: Int, _ len: Int) -> Int? {
            var v = 0
            for i in at..<(at + len) {
                let c = b[i]
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
        guard b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54, b[13] == 0x3A, b[16] == 0x3A,
            let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2),
            let s = num(17, 2), (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 61
        else { return nil }
        var p = 19
        var frac: UInt64 = 0
        if p < b.count && b[p] == 0x2E { (frac, p) = fraction(b, p + 1) }
        guard p < b.count, b[p] == 0x5A else { return nil }
        p += 1
        guard p < b.count, b[p] == 0x20 else { return nil }
        // days from civil (Howard Hinnant's algorithm), proleptic Gregorian
        let yy = mo <= 2 ? y - 1 : y
        let era = yy / 400
        let yoe = yy - era * 400
        let mp = (mo + 9) % 12
        let doy = (153 * mp + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let seconds = days * 86_400 + h * 3600 + mi * 60 + s
        // A year far past 2554 does not fit in u64 nanoseconds: not a time this format can hold.
        guard seconds >= 0 else { return nil }
        let (ns, o1) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        let (t, o2) = ns.addingReportingOverflow(frac)
        guard !o1 && !o2 else { return nil }
        return (t, p + 1)
    }
}

/// Line-by-line state of the log importer.
struct QEMULogDecoder {
    let path: String
    let events: QEMUTraceEvents
    let source: UInt16
    let clock: UInt8
    var mapper = QEMUEventMapper()
    /// The write bit of the last `vtd_iova_to_slpte: detected slpte permission error` message.
    private var pendingWrite: Bool?
    /// The last `vtd_dmar_fault` trace line: requester id, page and line.
    private var lastDmarFault: (sid: UInt16, page: UInt64, line: UInt64)?

    /// `pasid 0x<hex>: ` at the start of `body`: the value and where the rest begins.
    static func pasidPrefix(_ body: UnsafeRawBufferPointer) -> (UInt64, Int)? {
        let key = Array("pasid 0x".utf8)
        guard body.count > key.count, body.prefix(key.count).elementsEqual(key) else { return nil }
        var i = key.count
        var v: UInt64 = 0
        while i < body.count, let d = hexDigit(body[i]), v >> 60 == 0 {
            v = v << 4 | UInt64(d)
            i += 1
        }
        guard i > key.count, i + 1 < body.count, body[i] == 0x3A, body[i + 1] == 0x20 else { return nil }
        return (v, i + 2)
    }

    private static func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }

    /// The requester id of QEMU's `bus:dev:fn` device text (`00:05:00`).
    static func sid(ofQEMUDevice dev: Substring) -> UInt16? {
        let parts = dev.split(separator: ":").compactMap { UInt64($0, radix: 16) }
        guard parts.count == 3 else { return nil }
        return UInt16(truncatingIfNeeded: (parts[0] & 0xFF) << 8 | (parts[1] & 0x1F) << 3 | (parts[2] & 7))
    }

    /// One distinct event name met in the input, resolved once: its definition and mapping.
    private struct Slot {
        var name: String
        var bytes: [UInt8]
        var definition: QEMUTraceEvents.Definition?
        var event: MappedEvent?
    }
    private var slots: [Slot] = []
    /// Per-slot counts, added to the diagnostics by ``finish(diagnostics:)`` (no string hashing per line).
    private var counts: [(understood: Int, ignoredOrUnknown: Int)] = []
    /// Open-addressing table from the name's FNV-1a hash to slot indexes (-1 = empty).
    private var table = [Int](repeating: -1, count: 1024)

    /// The slot of the event named by `name`, created on first sight.
    private mutating func resolve(_ name: UnsafeRawBufferPointer) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for c in name { h = (h ^ UInt64(c)) &* 0x100_0000_01b3 }
        var i = Int(truncatingIfNeeded: h) & (table.count - 1)
        while table[i] >= 0 {
            let s = table[i]
            if slots[s].bytes.count == name.count && slots[s].bytes.elementsEqual(name) { return s }
            i = (i + 1) & (table.count - 1)
        }
        let text = String(decoding: name, as: UTF8.self)
        let slot = slots.count
        slots.append(Slot(name: text, bytes: Array(name), definition: events[text], event: MappedEvent(rawValue: text)))
        counts.append((0, 0))
        table[i] = slot
        if slots.count * 2 > table.count { rehash() }
        return slot
    }

    private mutating func rehash() {
        table = [Int](repeating: -1, count: table.count * 2)
        for (s, slot) in slots.enumerated() {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for c in slot.bytes { h = (h ^ UInt64(c)) &* 0x100_0000_01b3 }
            var i = Int(truncatingIfNeeded: h) & (table.count - 1)
            while table[i] >= 0 { i = (i + 1) & (table.count - 1) }
            table[i] = s
        }
    }

    /// Adds the per-name counts to `diagnostics` (call once, after the last line).
    mutating func finish(diagnostics: inout IngestDiagnostics) {
        for (s, slot) in slots.enumerated() {
            let c = counts[s]
            if c.understood > 0 { diagnostics.understood[slot.name, default: 0] += c.understood }
            if c.ignoredOrUnknown > 0 {
                // A name with no definition or no mapping: ignored when its family is one we read.
                switch QEMUEventMapper.classify(slot.name) {
                case .ignored, .mapped: diagnostics.ignored[slot.name, default: 0] += c.ignoredOrUnknown
                case .unknown: diagnostics.unknown[slot.name, default: 0] += c.ignoredOrUnknown
                }
            }
            counts[s] = (0, 0)
        }
    }

    init(path: String, events: QEMUTraceEvents, source: UInt16, clock: UInt8) {
        self.path = path
        self.events = events
        self.source = source
        self.clock = clock
    }

    mutating func line(
        _ b: UnsafeRawBufferPointer, number: UInt64, sink: inout some EventSink,
        diagnostics: inout IngestDiagnostics
    ) throws {
        if b.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
            diagnostics.comments += 1
            return
        }
        // `# ...`: a comment (a header naming where an excerpt comes from); QEMU writes no line starting so.
        if let first = b.first(where: { $0 != 0x20 && $0 != 0x09 }), first == 0x23 {
            diagnostics.comments += 1
            return
        }
        let shape = LineShape(b)
        let template = Event(
            kind: .marker, timestamp: shape.timestamp ?? 0, clock: clock, source: source, position: number)
        if let range = shape.nameRange {
            let nameBytes = UnsafeRawBufferPointer(rebasing: b[range])
            let slot = resolve(nameBytes)
            let entry = slots[slot]
            guard let definition = entry.definition else {
                counts[slot].ignoredOrUnknown += 1
                return
            }
            let body = UnsafeRawBufferPointer(rebasing: b[shape.bodyStart...])
            var template = template
            var parsed = QEMUEventArguments.parse(body, definition: definition)
            if parsed == nil, entry.event == .vtdDmarTranslate || entry.event == .vtdDmarFault,
                let (pasid, rest) = Self.pasidPrefix(body)
            {
                // Newer QEMU prints the PASID first (`pasid 0xffffffff: dev 00:05.00 iova ...`); the rest is
                // the 7.2 format. 0xffffffff is PCI_NO_PASID: no PASID, as in logs without the prefix.
                parsed = QEMUEventArguments.parse(
                    UnsafeRawBufferPointer(rebasing: body[rest...]), definition: definition)
                if parsed != nil && pasid != 0xFFFF_FFFF { template.aux2 = UInt32(truncatingIfNeeded: pasid) }
            }
            guard let args = parsed else {
                diagnostics.skip(
                    .init(
                        file: path, position: number,
                        message: "\(entry.name): arguments do not match the format \"\(definition.format)\""))
                return
            }
            if entry.event == .vtdDmarFault, let sid = args.int("sid"), let addr = args.int("addr") {
                lastDmarFault = (UInt16(truncatingIfNeeded: sid), addr & ~0xFFF, number)
            }
            if let event = entry.event {
                try mapper.map(event, args, template: template, sink: &sink)
                counts[slot].understood += 1
            } else {
                counts[slot].ignoredOrUnknown += 1
            }
            return
        }
        if shape.program != nil {
            let message = String(decoding: UnsafeRawBufferPointer(rebasing: b[shape.messageStart...]), as: UTF8.self)
            try errorReport(message, template: template, number: number, sink: &sink, diagnostics: &diagnostics)
            return
        }
        let preview = String(decoding: b.prefix(60), as: UTF8.self)
        diagnostics.skip(.init(file: path, position: number, message: "not a QEMU trace line: \"\(preview)\""))
    }

    /// `error_report()` messages of the VT-d model.
    private mutating func errorReport(
        _ message: String, template: Event, number: UInt64, sink: inout some EventSink,
        diagnostics: inout IngestDiagnostics
    ) throws {
        // `function: text` names the reporting function; other messages are keyed `error_report`.
        let head = message.prefix { $0 != ":" && $0 != " " }
        let function =
            message.dropFirst(head.count).hasPrefix(": ") && head.utf8.allSatisfy(isIdentifierByte) ? head : ""
        let key = function.isEmpty ? "error_report" : "error_report:" + function
        var values: [Substring: Substring] = [:]
        if let open = message.firstIndex(of: "("), let close = message.lastIndex(of: ")"), open < close {
            for pair in message[message.index(after: open)..<close].split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { values[kv[0].drop { $0 == " " }] = kv[1] }
            }
        }
        func number(_ k: Substring) -> UInt64? {
            guard let v = values[k] else { return nil }
            return v.hasPrefix("0x") ? UInt64(v.dropFirst(2), radix: 16) : UInt64(v)
        }
        if message.contains("detected slpte permission error") {
            pendingWrite = number("write").map { $0 != 0 }
            diagnostics.ignored[key, default: 0] += 1
        } else if message.contains("detected translation failure"), let iova = number("iova") {
            // vtd_iommu_translate() reports the failure that vtd_report_fault() traced as vtd_dmar_fault just
            // before: the same access, one fault.
            if let f = lastDmarFault, f.page == iova & ~0xFFF, template.position &- f.line <= 8,
                let dev = values["dev"], Self.sid(ofQEMUDevice: dev) == f.sid
            {
                diagnostics.ignored[key + " (the access of the vtd_dmar_fault line before)", default: 0] += 1
                pendingWrite = nil
                return
            }
            var e = template
            e.kind = .hostFault
            e.detail = FaultSource.vtd.rawValue
            e.address = iova
            // QEMU prints this BDF as bus:dev:fn (`00:05:00`).
            if let dev = values["dev"] {
                let parts = dev.split(separator: ":").compactMap { UInt64($0, radix: 16) }
                if parts.count == 3 {
                    e.device = mapper.device(bus: parts[0], slot: parts[1], function: parts[2], sink: &sink)
                }
            }
            if pendingWrite == true { e.eventFlags.insert(.write) }
            pendingWrite = nil
            try sink.append(e)
            diagnostics.understood[key, default: 0] += 1
        } else {
            diagnostics.ignored[key, default: 0] += 1
        }
    }
}
