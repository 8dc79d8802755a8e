/// QEMU trace event definitions as written in `trace-events` / `trace-events-all`
/// (`name(type arg, ...) "printf format"`): argument names and types, and the parsed format string.
///
/// The simpletrace importer needs the definitions of the QEMU build that wrote the file (argument types
/// decide the binary layout); the log importer uses them to read arguments back out of the printed text.
/// Pass the file given with `--trace-events FILE` as ``init(text:)``; ``builtin`` holds the QEMU 7.2
/// definitions of the vIOMMU and virtio events the importers map.
public struct QEMUTraceEvents: Sendable {
    /// One event definition.
    public struct Definition: Sendable {
        /// One argument.
        public struct Argument: Sendable, Equatable {
            /// C type as written (`uint64_t`, `const char *`, `void *`).
            public var type: String
            /// Argument name, as the mapper looks it up (`sid`, `addr`, `is_write`).
            public var name: String
            /// `char *`/`const char *`: stored as u32 length + bytes in simpletrace; all others as u64.
            public var isString: Bool
        }

        /// Event name (`vtd_dmar_fault`).
        public var name: String
        /// Arguments in declaration order (the order of the format's conversions and of simpletrace values).
        public var arguments: [Argument]
        /// The format string with the `PRIx64`-style macros resolved (`sid 0x%x fault %d ...`).
        public var format: String
        /// The format split into literal text and conversions.
        let pieces: [FormatPiece]
        /// Index of the argument called `name` (a linear scan: events have at most a handful of arguments,
        /// and comparing short names beats hashing them).
        public func index(of name: String) -> Int? { arguments.firstIndex { $0.name == name } }
    }

    /// Definitions by event name.
    public private(set) var definitions: [String: Definition] = [:]
    /// Lines that looked like definitions but could not be parsed (1-based line numbers), for diagnostics.
    public private(set) var malformedLines: [Int] = []

    /// No definitions.
    public init() {}

    /// Parses trace-events text. Comments, blank lines and lines that are not definitions are skipped; the
    /// `disable` and other property keywords before the name are accepted.
    public init(text: String) {
        var lineNumber = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = raw.drop { $0 == " " || $0 == "\t" }
            if line.isEmpty || line.hasPrefix("#") { continue }
            if let d = Self.parseDefinition(line) {
                definitions[d.name] = d
            } else {
                malformedLines.append(lineNumber)
            }
        }
    }

    /// Parses trace-events bytes (UTF-8).
    public init(bytes: [UInt8]) {
        self.init(text: String(decoding: bytes, as: UTF8.self))
    }

    /// Adds (or replaces) the definitions of `other`.
    public mutating func merge(_ other: QEMUTraceEvents) {
        definitions.merge(other.definitions) { _, new in new }
    }

    /// The definition of the event `name`.
    public subscript(name: String) -> Definition? { definitions[name] }

    /// `[disable] [tcg] [vcpu] name(args) "fmt"`.
    static func parseDefinition(_ line: Substring) -> Definition? {
        guard let open = line.firstIndex(of: "("), let close = line[open...].firstIndex(of: ")") else { return nil }
        let head = line[..<open].split(separator: " ")
        guard let nameWord = head.last else { return nil }
        let name = String(nameWord)
        guard !name.isEmpty, name.utf8.allSatisfy({ isIdentifierByte($0) }) else { return nil }
        var arguments: [Definition.Argument] = []
        let argText = String(line[line.index(after: open)..<close]).trimmedBlanks()
        if !argText.isEmpty && argText != "void" {
            for part in argText.split(separator: ",") {
                let a = String(part).trimmedBlanks()
                // The name is the trailing identifier; the rest (with any `*`) is the type.
                var nameStart = a.endIndex
                while nameStart > a.startIndex, let b = a[a.index(before: nameStart)].asciiValue, isIdentifierByte(b) {
                    nameStart = a.index(before: nameStart)
                }
                guard nameStart < a.endIndex, nameStart > a.startIndex else { return nil }
                let argName = String(a[nameStart...])
                let type = String(a[..<nameStart]).trimmedBlanks()
                let compact = type.replacingSpaces()
                let isString = compact == "char*" || compact == "constchar*"
                arguments.append(.init(type: type, name: argName, isString: isString))
            }
        }
        let rest = line[line.index(after: close)...]
        guard let format = resolveFormatLiteral(rest) else { return nil }
        return Definition(name: name, arguments: arguments, format: format, pieces: FormatPiece.parse(format))
    }

    /// Concatenates the C string literals and `PRIx64`-style macros after the argument list.
    static func resolveFormatLiteral(_ text: Substring) -> String? {
        var out = ""
        var i = text.startIndex
        var sawLiteral = false
        while i < text.endIndex {
            let c = text[i]
            if c == " " || c == "\t" {
                i = text.index(after: i)
            } else if c == "\"" {
                sawLiteral = true
                i = text.index(after: i)
                while i < text.endIndex && text[i] != "\"" {
                    if text[i] == "\\", text.index(after: i) < text.endIndex {
                        i = text.index(after: i)
                        switch text[i] {
                        case "n": out.append("\n")
                        case "t": out.append("\t")
                        default: out.append(text[i])
                        }
                    } else {
                        out.append(text[i])
                    }
                    i = text.index(after: i)
                }
                guard i < text.endIndex else { return nil }
                i = text.index(after: i)
            } else if let b = c.asciiValue, isIdentifierByte(b) {
                var j = i
                while j < text.endIndex, let b = text[j].asciiValue, isIdentifierByte(b) { j = text.index(after: j) }
                let word = text[i..<j]
                guard word.hasPrefix("PRI"), let conv = word.dropFirst(3).first else { return nil }
                out.append(conv)  // PRIx64 -> x, PRIu32 -> u, PRId64 -> d
                i = j
            } else {
                return nil
            }
        }
        return sawLiteral ? out : nil
    }
}

@inline(__always) func isIdentifierByte(_ b: UInt8) -> Bool {
    (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x5F
}

extension String {
    fileprivate func replacingSpaces() -> String { String(filter { $0 != " " && $0 != "\t" }) }
}

/// A piece of a printf format: literal text or one conversion.
enum FormatPiece: Sendable, Equatable {
    /// How a conversion's text is read back.
    enum Conversion: Sendable, Equatable {
        case signed, unsigned, hex, pointer, string, char, float
    }

    case literal([UInt8])
    /// `alternate` is the `#` flag (`%#x` prints `0x`); `padded` when a width was given.
    case conversion(Conversion, alternate: Bool, padded: Bool)

    static func parse(_ format: String) -> [FormatPiece] {
        let f = Array(format.utf8)
        var pieces: [FormatPiece] = []
        var literal: [UInt8] = []
        var i = 0
        while i < f.count {
            guard f[i] == 0x25, i + 1 < f.count else {  // '%'
                literal.append(f[i])
                i += 1
                continue
            }
            if f[i + 1] == 0x25 {
                literal.append(0x25)
                i += 2
                continue
            }
            var j = i + 1
            var alternate = false
            var padded = false
            while j < f.count, let c = Optional(f[j]), c == 0x2D || c == 0x2B || c == 0x20 || c == 0x23 || c == 0x30 {
                if c == 0x23 { alternate = true }
                j += 1
            }
            while j < f.count, (f[j] >= 0x30 && f[j] <= 0x39) || f[j] == 0x2A {
                padded = true
                j += 1
            }
            if j < f.count, f[j] == 0x2E {  // precision
                j += 1
                while j < f.count, (f[j] >= 0x30 && f[j] <= 0x39) || f[j] == 0x2A { j += 1 }
            }
            while j < f.count, [UInt8]("hlzjtLq".utf8).contains(f[j]) { j += 1 }
            guard j < f.count else {
                literal.append(contentsOf: f[i...])
                break
            }
            let kind: Conversion
            switch f[j] {
            case UInt8(ascii: "d"), UInt8(ascii: "i"): kind = .signed
            case UInt8(ascii: "u"): kind = .unsigned
            case UInt8(ascii: "x"), UInt8(ascii: "X"), UInt8(ascii: "o"): kind = .hex
            case UInt8(ascii: "p"): kind = .pointer
            case UInt8(ascii: "s"): kind = .string
            case UInt8(ascii: "c"): kind = .char
            case UInt8(ascii: "f"), UInt8(ascii: "g"), UInt8(ascii: "e"): kind = .float
            default:
                literal.append(contentsOf: f[i...j])
                i = j + 1
                continue
            }
            if !literal.isEmpty {
                pieces.append(.literal(literal))
                literal = []
            }
            pieces.append(.conversion(kind, alternate: alternate, padded: padded))
            i = j + 1
        }
        if !literal.isEmpty { pieces.append(.literal(literal)) }
        return pieces
    }
}
