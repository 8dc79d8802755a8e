import FoundationEssentials
import SystemPackage

/// A bad JSONL line: file, 1-based line number, optional byte column, and what was wrong.
public struct JSONLError: Error, Equatable, Sendable, CustomStringConvertible {
    public var path: String
    public var line: Int
    public var column: Int?
    public var message: String

    public var description: String {
        "\(path):\(line)\(column.map { ":\($0)" } ?? ""): \(message)"
    }
}

/// The JSONL form of a trace (`schemas/event.schema.json`): a metadata line, then one event per line with
/// the kind by name and the fields named per kind (``KindSchema``). Addresses are `"0x…"` strings, sizes
/// and counts decimal numbers, strings inline; device by name. Lossless: decoding the encoding of a trace
/// gives the same events, strings and metadata.
public enum JSONLCodec {
    /// Longest accepted line.
    public static let maxLineBytes = 1 << 20
    /// Deepest accepted nesting of an event line.
    public static let maxDepth = 32
    /// The `format` value of the metadata line.
    public static let formatName = "dmatrace-jsonl"
    /// The JSONL form's version.
    public static let version = 1

    struct MetadataLine: Codable {
        var kind: String
        var format: String
        var version: Int
        var metadata: TraceMetadata
    }

    // MARK: Encoding

    /// The metadata line (without newline).
    public static func metadataLine(_ metadata: TraceMetadata) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(
            MetadataLine(kind: "metadata", format: formatName, version: version, metadata: metadata))
        return String(decoding: data, as: UTF8.self)
    }

    static let flagNames = ["write", "implied", "truncated", "attributed", "error", "aligned"]

    private static let enumNameTable: [FieldType: [String]] = {
        var t: [FieldType: [String]] = [:]
        for f in [FieldType.mapAPI, .syncTarget, .swiotlbMode, .probeResult, .faultSource, .permissions] {
            t[f] = makeEnumNames(f)
        }
        return t
    }()

    /// The names of an enum-valued field's values (built once: read for every event written).
    static func enumNames(_ type: FieldType) -> [String]? { enumNameTable[type] }

    private static func makeEnumNames(_ type: FieldType) -> [String]? {
        switch type {
        case .mapAPI:
            [
                "page", "single", "phys", "resource", "sg", "coherent", "pages", "sgt", "intel_single", "intel_sg",
                "intel_bounce"
            ]
        case .syncTarget: ["for_cpu", "for_device"]
        case .swiotlbMode: ["normal", "force", "no_force"]
        case .probeResult: ["probed", "failed", "refused_features", "invisible"]
        case .faultSource: ["unknown", "vtd", "amdvi", "smmuv3", "virtio_iommu", "iommu_core"]
        case .permissions: ["none", "r", "w", "rw"]
        default: nil
        }
    }

    static func hex(_ v: UInt64) -> String { "\"0x" + Hex.digits(v) + "\"" }

    /// One event line (without newline).
    /// - Parameters:
    ///   - metadata: names devices.
    ///   - string: resolves string ids.
    public static func eventLine(_ e: Event, metadata: TraceMetadata, string: (UInt32) -> String?) -> String {
        var s = "{\"kind\":\"\(e.kind.name)\",\"ts\":\(e.timestamp)"
        if e.clock != 0 { s += ",\"clock\":\(e.clock)" }
        if e.device != Event.noDevice {
            // By name only when the name leads back to this index (names in a device table may repeat).
            if Int(e.device) < metadata.devices.count,
                metadata.deviceIndex(named: metadata.devices[Int(e.device)].name) == e.device
            {
                s += ",\"device\":" + jsonQuoted(metadata.devices[Int(e.device)].name)
            } else {
                s += ",\"device\":\(e.device)"
            }
        }
        if KindSchema.hasDirection(e.kind) || e.flags & 3 != 0 {
            s += ",\"dir\":\"\(e.direction.kernelName)\""
        }
        let fields = KindSchema.fields(e.kind)
        for f in fields {
            let v = e.value(of: f.slot)
            s += ",\"\(f.name)\":"
            switch f.type {
            case .hex: s += hex(v)
            case .uint: s += "\(v)"
            case .int32: s += "\(Int32(bitPattern: UInt32(truncatingIfNeeded: v)))"
            case .gfpFlags: s += jsonQuoted(GFPNames.render(v))
            case .string:
                let id = UInt32(truncatingIfNeeded: v)
                if id == Event.noString {
                    s += "null"
                } else if let str = string(id) {
                    s += jsonQuoted(str)
                } else if id >= UInt32(DMATFormat.maxStrings) {
                    s += "{\"id\":\(id)}"
                } else {
                    // An id that names no string yet could name one interned later: written as none.
                    s += "null"
                }
            default:
                let names = enumNames(f.type) ?? []
                s += v < names.count ? "\"\(names[Int(v)])\"" : "\(v)"
            }
        }
        // Slots the kind does not name are normally zero; when not, they are kept under their generic name.
        for slot in RecordSlot.allCases where !fields.contains(where: { $0.slot == slot }) {
            let v = e.value(of: slot)
            if v != 0 { s += ",\"\(slot.rawValue)\":\(v)" }
        }
        let flagBits = e.flags >> 2
        if flagBits != 0 {
            s += ",\"flags\":["
            var first = true
            for (i, name) in flagNames.enumerated() where flagBits & (1 << i) != 0 {
                s += (first ? "\"" : ",\"") + name + "\""
                first = false
            }
            s += "]"
        }
        if e.source != Event.noSource { s += ",\"source\":\(e.source)" }
        if e.position != 0 || e.source != Event.noSource { s += ",\"pos\":\(e.position)" }
        if let cpu = e.cpu { s += ",\"on_cpu\":\(cpu)" }
        return s + "}"
    }

    /// Writes `source` as JSONL: the metadata line, then every event; `write` receives each line with its
    /// newline.
    public static func encode(_ source: some EventSource, _ write: (String) throws -> Void) throws {
        try write(metadataLine(source.metadata) + "\n")
        try source.forEachEvent { _, e in
            try write(eventLine(e, metadata: source.metadata, string: source.string) + "\n")
        }
    }

    /// `source` as one JSONL string.
    public static func encode(_ source: some EventSource) throws -> String {
        var out = ""
        try encode(source) { out += $0 }
        return out
    }

    // MARK: Decoding

    /// Decodes JSONL text into `sink`; returns the number of events appended.
    public static func decode<S: EventSink>(_ text: String, path: String = "-", into sink: inout S) throws -> Int {
        var copy = text
        return try copy.withUTF8 { try decode(UnsafeRawBufferPointer($0), path: path, into: &sink) }
    }

    /// Decodes JSONL bytes into `sink`; returns the number of events appended.
    /// - Throws: ``JSONLError`` naming the line; errors from `sink`.
    public static func decode<S: EventSink>(_ bytes: UnsafeRawBufferPointer, path: String = "-", into sink: inout S)
        throws -> Int
    {
        var decoder = JSONLDecoder(path: path)
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            try decoder.decodeLine(UnsafeRawBufferPointer(rebasing: bytes[start..<end]), into: &sink)
            start = end + 1
        }
        return decoder.events
    }

    /// Decodes JSONL from a file descriptor, line by line (memory bounded by ``maxLineBytes``).
    public static func decode<S: EventSink>(fd: FileDescriptor, path: String, into sink: inout S) throws -> Int {
        let input = InputBuffer(fd: fd, path: path, seekable: false, ownsDescriptor: false)
        var decoder = JSONLDecoder(path: path)
        var scanned = 0
        while true {
            let more = try input.fill(scanned + 1)
            let b = input.current
            var k = scanned
            while k < b.count && b[k] != 0x0A { k += 1 }
            if k < b.count || (!more && !b.isEmpty) {
                if k > maxLineBytes {
                    throw JSONLError(
                        path: path, line: decoder.lineNumber + 1, column: nil,
                        message: "line longer than \(maxLineBytes) bytes")
                }
                try decoder.decodeLine(UnsafeRawBufferPointer(rebasing: b[..<k]), into: &sink)
                input.advance(min(k + 1, b.count))
                scanned = 0
                continue
            }
            if !more { break }
            scanned = k
            if scanned > maxLineBytes {
                throw JSONLError(
                    path: path, line: decoder.lineNumber + 1, column: nil,
                    message: "line longer than \(maxLineBytes) bytes")
            }
        }
        return decoder.events
    }
}

/// Decodes JSONL one line at a time (for importers that read lines themselves).
public struct JSONLDecoder {
    /// File name used in errors.
    public var path: String
    /// Lines seen so far (the number of the line just decoded).
    public private(set) var lineNumber = 0
    /// Events appended so far.
    public private(set) var events = 0
    /// One more than the largest string id the sink returned for text so far.
    private var decodedStrings = 0

    public init(path: String) { self.path = path }

    private func fail(_ message: String, column: Int? = nil) -> JSONLError {
        JSONLError(path: path, line: lineNumber, column: column, message: message)
    }

    /// Decodes one line (without its newline) into `sink`. Blank lines are ignored.
    /// - Throws: ``JSONLError`` naming this line; errors from `sink.append`.
    public mutating func decodeLine<S: EventSink>(_ line: UnsafeRawBufferPointer, into sink: inout S) throws {
        lineNumber += 1
        var line = line
        if let last = line.last, last == 0x0D { line = UnsafeRawBufferPointer(rebasing: line.dropLast()) }
        guard line.count <= JSONLCodec.maxLineBytes else {
            throw fail("line longer than \(JSONLCodec.maxLineBytes) bytes")
        }
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return }
        let value: JSONValue
        do {
            value = try MiniJSONParser.parse(line, maxDepth: JSONLCodec.maxDepth)
        } catch {
            throw fail(error.message, column: error.column)
        }
        guard case .object(let members) = value else { throw fail("a line must be a JSON object") }
        guard let kindValue = members.first(where: { $0.key == "kind" })?.value, case .string(let kindName) = kindValue
        else {
            throw fail("missing \"kind\"")
        }
        if kindName == "metadata" {
            let m: JSONLCodec.MetadataLine
            do {
                m = try BoundedJSON.decode(JSONLCodec.MetadataLine.self, from: Data(line))
            } catch {
                throw fail("bad metadata line: \(error)")
            }
            guard m.format == JSONLCodec.formatName else {
                throw fail("format \"\(m.format)\" is not \(JSONLCodec.formatName)")
            }
            guard m.version <= JSONLCodec.version else {
                throw fail("JSONL version \(m.version) is newer than this dmatrace reads (\(JSONLCodec.version))")
            }
            sink.metadata = m.metadata
            return
        }
        guard let kind = EventKind(name: kindName) else { throw fail("unknown kind \"\(kindName)\"") }
        var e = Event(kind: kind)
        let fields = KindSchema.fields(kind)
        for f in fields where f.type == .string { e.set(f.slot, UInt64(Event.noString)) }
        for member in members {
            let key = member.key
            let v = member.value
            switch key {
            case "kind": continue
            case "ts": e.timestamp = try uint(v, key, max: .max)
            case "clock": e.clock = UInt8(try uint(v, key, max: UInt64(UInt8.max)))
            case "source": e.source = UInt16(try uint(v, key, max: UInt64(UInt16.max)))
            case "pos": e.position = try uint(v, key, max: Event.positionMask)
            case "on_cpu": e.cpu = UInt16(try uint(v, key, max: 0xFFFE))
            case "device":
                switch v {
                case .string(let name): e.device = sink.device(DeviceInfo(name: name))
                case .null: e.device = Event.noDevice
                default: e.device = UInt16(try uint(v, key, max: UInt64(UInt16.max)))
                }
            case "dir":
                guard case .string(let d) = v, let dir = DMADirection(kernelName: d) else {
                    throw fail("\"dir\" must be one of BIDIRECTIONAL, TO_DEVICE, FROM_DEVICE, NONE")
                }
                e.direction = dir
            case "flags":
                guard case .array(let items) = v else { throw fail("\"flags\" must be an array of names") }
                var bits: UInt8 = 0
                for item in items {
                    guard case .string(let n) = item, let i = JSONLCodec.flagNames.firstIndex(of: n) else {
                        throw fail("unknown flag in \"flags\" (known: \(JSONLCodec.flagNames.joined(separator: ", ")))")
                    }
                    bits |= 1 << (i + 2)
                }
                e.eventFlags = EventFlags(rawValue: bits)
            default:
                if let f = fields.first(where: { $0.name == key }) {
                    try set(&e, f, v, &sink)
                } else if let slot = RecordSlot(rawValue: key) {
                    guard e.set(slot, try uint(v, key, max: .max)) else { throw fail("\"\(key)\" out of range") }
                } else {
                    throw fail("unknown field \"\(key)\" for kind \(kind.name)")
                }
            }
        }
        try sink.append(e)
        events += 1
    }

    private mutating func set<S: EventSink>(_ e: inout Event, _ f: KindField, _ v: JSONValue, _ sink: inout S) throws {
        let value: UInt64
        switch f.type {
        case .hex, .uint: value = try uint(v, f.name, max: .max)
        case .gfpFlags:
            // Names (`GFP_KERNEL|__GFP_ZERO`), or the encoding as a number or `0x…` (JSONL of older versions).
            if case .string(let t) = v, !t.hasPrefix("0x"), !t.hasPrefix("0X") {
                guard let g = GFPNames.parse(t) else {
                    throw fail(
                        "\"\(f.name)\": unknown GFP flag in \"\(t)\" (known: \(GFPNames.names.joined(separator: ", ")), other, none)"
                    )
                }
                value = g
            } else {
                value = try uint(v, f.name, max: UInt64(UInt32.max))
            }
        case .int32:
            guard case .number(let t) = v, let n = Int32(t) else {
                throw fail("\"\(f.name)\" must be a 32-bit signed integer")
            }
            value = UInt64(UInt32(bitPattern: n))
        case .string:
            switch v {
            case .string(let s):
                let id = sink.intern(s)
                if id != Event.noString { decodedStrings = max(decodedStrings, Int(id) + 1) }
                value = UInt64(id)
            case .null: value = UInt64(Event.noString)
            case .object(let m):
                guard m.count == 1, m[0].key == "id" else { throw fail("\"\(f.name)\" must be a string") }
                value = try uint(m[0].value, f.name, max: UInt64(UInt32.max))
                // An id of a string already in the table is that string; a larger id below the table limit
                // could collide with strings interned from later text, so it is refused. {"id": n} with
                // n >= 2^24 is an id no table can reach, kept as it is.
                guard value >= UInt64(DMATFormat.maxStrings) || value < UInt64(decodedStrings) else {
                    throw fail(
                        "\"\(f.name)\": string id \(value) names no string yet; give the text (ids below \(DMATFormat.maxStrings) are table entries)"
                    )
                }
            default: throw fail("\"\(f.name)\" must be a string")
            }
        default:
            let names = JSONLCodec.enumNames(f.type) ?? []
            if case .string(let s) = v {
                guard let i = names.firstIndex(of: s) else {
                    throw fail("\"\(f.name)\" must be one of \(names.joined(separator: ", "))")
                }
                value = UInt64(i)
            } else {
                value = try uint(v, f.name, max: UInt64(UInt8.max))
            }
        }
        guard e.set(f.slot, value) else { throw fail("\"\(f.name)\" = \(value) does not fit its field") }
    }

    /// An unsigned value from a JSON number or a `"0x…"`/decimal string.
    private func uint(_ v: JSONValue, _ key: String, max: UInt64) throws -> UInt64 {
        let parsed: UInt64?
        switch v {
        case .number(let t): parsed = UInt64(t)
        case .string(let s):
            if s.hasPrefix("0x") || s.hasPrefix("0X") {
                parsed = UInt64(s.dropFirst(2), radix: 16)
            } else {
                parsed = UInt64(s)
            }
        default: parsed = nil
        }
        guard let n = parsed else { throw fail("\"\(key)\" must be an unsigned integer or a \"0x…\" string") }
        guard n <= max else { throw fail("\"\(key)\" = \(n) exceeds \(max)") }
        return n
    }
}
