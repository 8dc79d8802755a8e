import TraceFormat

/// Imports a QEMU "simple" trace backend file, format version 4 (qemu scripts/simpletrace.py, trace/simple.c), using the
/// trace-events definitions of the QEMU build that wrote it (`--trace-events FILE`):
///
/// ```swift
/// let events = QEMUTraceEvents(bytes: traceEventsFileBytes)
/// var importer = SimpletraceImporter(traceEvents: events)
/// ```
///
/// Event ids come from the mapping records in the file (never from trace-events line order). Arguments are
/// read by their declared types (strings: u32 length + bytes; everything else u64) and mapped by
/// ``QEMUEventMapper``, the same code as the log importer. Timestamps are QEMU's CLOCK_MONOTONIC ns.
/// DROPPED records become ``EventKind/lostEvents``. Provenance is the byte offset of each record.
/// Without trace-events the importer throws ``IngestError/missingCompanion(path:what:)``.
public struct SimpletraceImporter: Importer {
    public static let formatID = "simpletrace"

    /// The companion definitions; nil when none were given.
    public var traceEvents: QEMUTraceEvents?

    /// An importer that cannot run until trace-events are given (the registry can sniff with it).
    public init() { traceEvents = nil }

    /// An importer reading with the definitions of the QEMU build that wrote the trace.
    public init(traceEvents: QEMUTraceEvents) { self.traceEvents = traceEvents }

    static let headerEventID: UInt64 = 0xFFFF_FFFF_FFFF_FFFF
    static let magic: UInt64 = 0xF2B1_77CB_0AA4_29B4
    static let droppedEventID: UInt64 = 0xFFFF_FFFF_FFFF_FFFE
    /// Longest event name in a mapping record.
    static let maxNameLength = 1024
    /// Longest event record (QEMU caps strings at 512 bytes; events have at most 10 arguments).
    static let maxRecordLength = 1 << 20

    /// 100 for the simpletrace header (either byte order), else 0.
    public static func sniff(_ head: UnsafeRawBufferPointer) -> Int {
        guard head.count >= 16 else { return 0 }
        let id = head.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
        let magic = head.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        guard id == headerEventID else { return 0 }
        return magic == Self.magic.littleEndian || magic == Self.magic.bigEndian ? 100 : 0
    }

    public mutating func run(
        _ input: IngestInput, source: UInt16, clock: UInt8,
        into sink: inout some EventSink, diagnostics: inout IngestDiagnostics
    ) throws(IngestError) {
        guard let traceEvents else {
            throw .missingCompanion(
                path: input.path,
                what: "simpletrace needs the trace-events-all file of the QEMU that wrote it (--trace-events FILE)")
        }
        let path = input.path
        let summary = try input.readAll().withIngestBytes {
            (bytes: UnsafeRawBufferPointer) throws(IngestError) -> SimpletraceSummary in
            try Self.decode(
                bytes, path: path, events: traceEvents, source: source, clock: clock, into: &sink,
                diagnostics: &diagnostics)
        }
        if sink.metadata.capture.viommu == nil, let kind = summary.viommu { sink.metadata.capture.viommu = kind }
    }

    /// Decodes a simpletrace file held in `bytes`: a pure function of the bytes and the definitions. Throws
    /// for a file that is not simpletrace v4; damage after the header is reported in `diagnostics` (byte
    /// offsets) and reading stops there or skips the record, whichever is safe.
    @discardableResult
    public static func decode(
        _ bytes: UnsafeRawBufferPointer, path: String, events: QEMUTraceEvents, source: UInt16, clock: UInt8,
        into sink: inout some EventSink, diagnostics: inout IngestDiagnostics
    ) throws(IngestError) -> SimpletraceSummary {
        let probe = BinaryReader(bytes, path: path)
        let id = try probe.u64(0, "simpletrace header")
        let rawMagic = try probe.u64(8, "simpletrace magic")
        guard id == headerEventID, rawMagic == magic || rawMagic == magic.byteSwapped else {
            throw probe.bad(0, "not a QEMU simpletrace file (header event id and magic 0xf2b177cb0aa429b4 missing)")
        }
        // Host byte order: the magic read little-endian tells which.
        let r = BinaryReader(bytes, bigEndian: rawMagic != magic, path: path)
        let version = try r.u64(16, "simpletrace version")
        guard version == 4 else { throw r.bad(16, "simpletrace log version \(version) is not supported (4 is)") }

        var names: [UInt64: String] = [droppedEventID: "dropped"]
        var mapper = QEMUEventMapper()
        var p = 24
        func problem(_ at: Int, _ message: String) {
            diagnostics.skip(.init(file: path, position: UInt64(at), isByteOffset: true, message: message))
        }
        while p < r.count {
            let recordAt = p
            guard let type = try? r.u64(p) else {
                problem(p, "truncated: \(r.count - p) bytes left, a record type needs 8")
                break
            }
            switch type {
            case 0:  // mapping: u64 id, u32 length, name
                guard let eventID = try? r.u64(p + 8), let length = try? r.u32(p + 16) else {
                    problem(p, "truncated mapping record")
                    p = r.count
                    continue
                }
                guard Int(length) <= maxNameLength else {
                    problem(p, "mapping record name of \(length) bytes exceeds \(maxNameLength); stopping")
                    p = r.count
                    continue
                }
                guard let name = try? r.slice(p + 20, Int(length), "event name") else {
                    problem(p, "truncated mapping record name")
                    p = r.count
                    continue
                }
                names[eventID] = String(decoding: name, as: UTF8.self)
                p += 20 + Int(length)
            case 1:  // event: u64 id, u64 timestamp, u32 length (from id on), u32 pid, arguments
                guard let eventID = try? r.u64(p + 8), let timestamp = try? r.u64(p + 16),
                    let length = try? r.u32(p + 24)
                else {
                    problem(p, "truncated event record header")
                    p = r.count
                    continue
                }
                guard length >= 24, Int(length) <= maxRecordLength else {
                    problem(p, "event record length \(length) is impossible; stopping")
                    p = r.count
                    continue
                }
                guard r.has(p + 8, Int(length)) else {
                    problem(p, "truncated: event record of \(length) bytes, \(r.count - p - 8) left")
                    p = r.count
                    continue
                }
                let args = UnsafeRawBufferPointer(rebasing: bytes[(p + 32)..<(p + 8 + Int(length))])
                p += 8 + Int(length)
                let template = Event(
                    kind: .marker, timestamp: timestamp, clock: clock, source: source, position: UInt64(recordAt))
                guard let name = names[eventID] else {
                    diagnostics.unknown["event id \(eventID)", default: 0] += 1
                    continue
                }
                if eventID == droppedEventID {
                    let a = BinaryReader(args, bigEndian: r.bigEndian, path: path)
                    let count = (try? a.u64(0)) ?? 0
                    var e = template
                    e.kind = .lostEvents
                    e.aux = UInt32(clamping: count)
                    e.aux2 = Event.noString
                    try append(e, to: &sink, path: path)
                    diagnostics.addLost(count)
                    diagnostics.understood["dropped", default: 0] += 1
                    continue
                }
                guard let definition = events[name] else {
                    if QEMUEventMapper.isKnownFamily(name) {
                        diagnostics.ignored[name, default: 0] += 1
                    } else {
                        diagnostics.unknown[name, default: 0] += 1
                    }
                    continue
                }
                guard let values = arguments(args, definition: definition, bigEndian: r.bigEndian) else {
                    problem(
                        recordAt,
                        "\(name): arguments do not fit the record (\(length - 24) bytes) for \(definition.arguments.count) declared arguments"
                    )
                    continue
                }
                do {
                    switch try mapper.map(name, values, template: template, sink: &sink) {
                    case .mapped: diagnostics.understood[name, default: 0] += 1
                    case .ignored: diagnostics.ignored[name, default: 0] += 1
                    case .unknown: diagnostics.unknown[name, default: 0] += 1
                    }
                } catch {
                    throw .unreadable(path: path, reason: "could not store events: \(error)")
                }
            default:
                problem(p, "unknown record type \(type); stopping")
                p = r.count
            }
        }
        return SimpletraceSummary(viommu: mapper.viommu)
    }

    /// Reads `definition`'s arguments in declaration order; nil when they overrun the record.
    static func arguments(_ bytes: UnsafeRawBufferPointer, definition: QEMUTraceEvents.Definition, bigEndian: Bool)
        -> QEMUEventArguments?
    {
        var values = QEMUEventArguments(definition: definition)
        let r = BinaryReader(bytes, bigEndian: bigEndian, path: "")
        var q = 0
        for (i, a) in definition.arguments.enumerated() {
            if a.isString {
                guard let n = try? r.u32(q), let s = try? r.slice(q + 4, Int(n), a.name) else { return nil }
                values.strings[i] = String(decoding: s, as: UTF8.self)
                q += 4 + Int(n)
            } else {
                guard let v = try? r.u64(q) else { return nil }
                values.integers[i] = v
                q += 8
            }
        }
        return values
    }

    private static func append(_ e: Event, to sink: inout some EventSink, path: String) throws(IngestError) {
        do { try sink.append(e) } catch {
            throw IngestError.unreadable(path: path, reason: "could not store events: \(error)")
        }
    }
}

/// What ``SimpletraceImporter/decode(_:path:events:source:clock:into:diagnostics:)`` learnt besides events.
public struct SimpletraceSummary: Sendable, Equatable {
    /// The vIOMMU kind the events reveal (`intel-iommu`, `amd-iommu`, `smmuv3`, `virtio-iommu`), if any.
    public var viommu: String?
}
