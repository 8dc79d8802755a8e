/// One kernel event's binary layout, parsed from its tracefs `format` file (as embedded in a trace.dat):
/// the event id (`common_type`) and each field's name, offset, size and signedness.
///
/// Events are decoded only through these descriptions, so a kernel that moves or resizes a field still
/// decodes correctly; field names are what the importer looks up.
public struct TraceEventFormat: Sendable, Equatable {
    /// One `field:` line.
    public struct Field: Sendable, Equatable {
        /// How the field's bytes are to be read.
        public enum Storage: Sendable, Equatable {
            /// A scalar integer (1, 2, 4 or 8 bytes).
            case scalar
            /// A fixed-size array (`u64 addrs[4]`) or a char array.
            case fixedArray
            /// `__data_loc T[] name`: a u32 holding offset (low 16 bits) and length (high 16 bits) in the record.
            case dataLoc
            /// `__rel_loc T[] name` (5.19+): like dataLoc, offset relative to the end of this field.
            case relLoc
        }

        /// Field name (`iova`, `device`, `phys_addrs`).
        public var name: String
        /// The C type as written (`u64`, `__data_loc char[]`, `size_t`).
        public var type: String
        /// Byte offset in the record (common fields included).
        public var offset: Int
        /// Bytes the field occupies (4 for `__data_loc`, whose data lies after the fixed fields).
        public var size: Int
        /// Whether integer values are sign-extended.
        public var signed: Bool
        /// How the bytes are to be read.
        public var storage: Storage

        /// Element size of a dynamic or fixed array, from its C type; 1 for `char`.
        public func elementSize(longSize: Int) -> Int {
            var t = type
            if t.hasPrefix("__data_loc ") { t.removeFirst("__data_loc ".count) }
            if t.hasPrefix("__rel_loc ") { t.removeFirst("__rel_loc ".count) }
            if let b = t.firstIndex(of: "[") { t = String(t[..<b]) }
            t = t.trimmedBlanks()
            if t.hasPrefix("const ") { t.removeFirst(6) }
            switch t {
            case "char", "unsigned char", "u8", "s8", "bool", "__u8": return 1
            case "u16", "s16", "short", "unsigned short", "__u16": return 2
            case "u32", "s32", "int", "unsigned int", "unsigned", "__u32", "gfp_t": return 4
            case "u64", "s64", "unsigned long long", "long long", "__u64", "dma_addr_t", "phys_addr_t": return 8
            case "unsigned long", "long", "size_t", "ssize_t": return longSize
            default: return t.hasSuffix("*") ? longSize : 8
            }
        }
    }

    /// Numeric id (`ID:`), the value of `common_type` in each record.
    public var id: Int
    /// Event system (`iommu`, `dma`, `ftrace`), from the trace.dat section the format came from.
    public var system: String
    /// Event name (`map`, `dma_map_page`).
    public var name: String
    /// The fields in file order, common fields included.
    public var fields: [Field] { didSet { index = Self.index(fields) } }
    /// Field position by name (the importer looks fields up by name for every record: a linear search with a
    /// copy of the field was 16% of `ingest` of a trace.dat, measured with `perf`).
    private var index: [String: Int] = [:]

    private static func index(_ fields: [Field]) -> [String: Int] {
        var d: [String: Int] = [:]
        for (i, f) in fields.enumerated() where d[f.name] == nil { d[f.name] = i }
        return d
    }
    /// The `print fmt:` line, kept for diagnostics.
    public var printFormat: String

    /// Looks a field up by name.
    public func field(_ name: String) -> Field? { index[name].map { fields[$0] } }

    /// Parses a `format` file; nil when it has no `name:` or `ID:` line. Unparseable field lines are left out
    /// (they cannot be decoded, but the rest of the event can).
    public init?(text: String, system: String) {
        var name: String?
        var id: Int?
        var fields: [Field] = []
        var printFormat = ""
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = rawLine.drop { $0 == " " || $0 == "\t" }
            if line.hasPrefix("name: ") {
                name = String(line.dropFirst(6)).trimmedBlanks()
            } else if line.hasPrefix("ID: ") {
                id = Int(String(line.dropFirst(4)).trimmedBlanks())
            } else if line.hasPrefix("print fmt: ") {
                printFormat = String(line.dropFirst(11))
            } else if line.hasPrefix("field:") {
                if let f = TraceEventFormat.parseField(line) { fields.append(f) }
            }
        }
        guard let name, let id, !name.isEmpty else { return nil }
        self.init(id: id, system: system, name: name, fields: fields, printFormat: printFormat)
    }

    /// A format built in code (tests, tools).
    public init(id: Int, system: String, name: String, fields: [Field], printFormat: String = "") {
        self.id = id
        self.system = system
        self.name = name
        self.fields = fields
        self.index = Self.index(fields)
        self.printFormat = printFormat
    }

    /// `field:u64 iova;\toffset:8;\tsize:8;\tsigned:0;`
    static func parseField(_ line: Substring) -> Field? {
        var decl: Substring?
        var offset: Int?
        var size: Int?
        var signed = false
        for part in line.split(separator: ";") {
            let p = part.drop { $0 == " " || $0 == "\t" }
            if p.hasPrefix("field:") {
                decl = p.dropFirst(6)
            } else if p.hasPrefix("offset:") {
                offset = Int(p.dropFirst(7))
            } else if p.hasPrefix("size:") {
                size = Int(p.dropFirst(5))
            } else if p.hasPrefix("signed:") {
                signed = p.dropFirst(7) == "1"
            }
        }
        guard let decl, let offset, let size, offset >= 0, size >= 0, offset <= 0xFFFF, size <= 0xFFFF else {
            return nil
        }
        let d = String(decl).trimmedBlanks()
        guard let lastSpace = d.lastIndex(of: " ") else { return nil }
        var fname = String(d[d.index(after: lastSpace)...])
        let type = String(d[..<lastSpace]).trimmedBlanks()
        var isArray = false
        if let b = fname.firstIndex(of: "[") {
            fname = String(fname[..<b])
            isArray = true
        }
        let storage: Field.Storage
        if type.hasPrefix("__data_loc") {
            storage = .dataLoc
        } else if type.hasPrefix("__rel_loc") {
            storage = .relLoc
        } else if isArray || (size != 1 && size != 2 && size != 4 && size != 8) {
            storage = .fixedArray
        } else {
            storage = .scalar
        }
        return Field(name: fname, type: type, offset: offset, size: size, signed: signed, storage: storage)
    }
}

extension String {
    /// The string without leading and trailing spaces and tabs (no Foundation).
    func trimmedBlanks() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\n" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\n" || l == "\r" { s.removeLast() }
        return String(s)
    }
}
