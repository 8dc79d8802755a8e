/// The argument values of one QEMU trace event, by the argument names of its ``QEMUTraceEvents/Definition``:
/// integers as their 64-bit pattern (negative values two's complement, pointers as addresses, bools 0/1),
/// strings as text. Both QEMU importers fill this, so one mapper serves the log and the simpletrace forms.
struct QEMUEventArguments {
    let definition: QEMUTraceEvents.Definition
    var integers: [UInt64]
    var strings: [String?]

    init(definition: QEMUTraceEvents.Definition) {
        self.definition = definition
        integers = [UInt64](repeating: 0, count: definition.arguments.count)
        strings = [String?](repeating: nil, count: definition.arguments.count)
    }

    /// The integer argument `name` (nil when the event has no such argument).
    func int(_ name: String) -> UInt64? {
        guard let i = definition.index(of: name) else { return nil }
        return integers[i]
    }

    /// The first of several alternative argument names that exists.
    func int(_ names: String...) -> UInt64? {
        for n in names { if let v = int(n) { return v } }
        return nil
    }

    func string(_ name: String) -> String? {
        guard let i = definition.index(of: name) else { return nil }
        return strings[i]
    }

    /// Reads the arguments back out of the text the log backend printed for this event (`body` is the text
    /// after `name `). Returns nil when the text does not follow the event's format.
    static func parse(_ body: UnsafeRawBufferPointer, definition: QEMUTraceEvents.Definition) -> QEMUEventArguments? {
        var args = QEMUEventArguments(definition: definition)
        let pieces = definition.pieces
        let n = body.count
        var p = 0
        var argument = 0
        var k = 0
        while k < pieces.count {
            switch pieces[k] {
            case .literal(let lit):
                if lit.count <= n - p && zip(lit.indices, lit).allSatisfy({ body[p + $0] == $1 }) {
                    p += lit.count
                } else if p == n && lit.allSatisfy({ $0 == 0x20 }) {
                    // trailing spaces of the format removed from the line
                } else {
                    return nil
                }
            case let .conversion(kind, alternate, padded):
                if padded || kind == .signed || kind == .unsigned { while p < n && body[p] == 0x20 { p += 1 } }
                var value: UInt64 = 0
                switch kind {
                case .signed:
                    var negative = false
                    if p < n && (body[p] == 0x2D || body[p] == 0x2B) {
                        negative = body[p] == 0x2D
                        p += 1
                    }
                    guard let (v, next) = decimal(body, p) else { return nil }
                    p = next
                    value = negative ? 0 &- v : v
                case .unsigned:
                    guard let (v, next) = decimal(body, p) else { return nil }
                    p = next
                    value = v
                case .hex, .pointer:
                    if kind == .pointer, n - p >= 5, Array(body[p..<(p + 5)]) == Array("(nil)".utf8) {
                        p += 5
                    } else {
                        if (alternate || kind == .pointer), n - p >= 2, body[p] == 0x30, body[p + 1] | 0x20 == 0x78 {
                            p += 2
                        }
                        guard let (v, next) = hexadecimal(body, p) else { return nil }
                        p = next
                        value = v
                    }
                case .string:
                    var end = n
                    if k + 1 < pieces.count {
                        if case .literal(let lit) = pieces[k + 1] {
                            end = find(lit, in: body, from: p) ?? (lit.allSatisfy { $0 == 0x20 } ? n : -1)
                            if end < 0 { return nil }
                        } else {
                            end = p
                            while end < n && body[end] != 0x20 { end += 1 }
                        }
                    }
                    if argument < args.strings.count {
                        args.strings[argument] = String(
                            decoding: UnsafeRawBufferPointer(rebasing: body[p..<end]), as: UTF8.self)
                    }
                    p = end
                case .char:
                    guard p < n else { return nil }
                    value = UInt64(body[p])
                    p += 1
                case .float:
                    while p < n, let c = Optional(body[p]),
                        (c >= 0x30 && c <= 0x39) || c == 0x2E || c == 0x2D || c == 0x2B || c == 0x65
                    {
                        p += 1
                    }
                }
                if argument < args.integers.count { args.integers[argument] = value }
                argument += 1
            }
            k += 1
        }
        while p < n && (body[p] == 0x20 || body[p] == 0x09) { p += 1 }
        return p == n ? args : nil
    }

    private static func decimal(_ b: UnsafeRawBufferPointer, _ start: Int) -> (UInt64, Int)? {
        var p = start
        var v: UInt64 = 0
        while p < b.count, b[p] >= 0x30 && b[p] <= 0x39 {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(b[p] - 0x30))
            if o1 || o2 { return nil }
            v = s
            p += 1
        }
        return p > start ? (v, p) : nil
    }

    private static func hexadecimal(_ b: UnsafeRawBufferPointer, _ start: Int) -> (UInt64, Int)? {
        var p = start
        var v: UInt64 = 0
        while p < b.count {
            let c = b[p]
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x61...0x66: d = c - 0x61 + 10
            case 0x41...0x46: d = c - 0x41 + 10
            default: d = 0xFF
            }
            if d == 0xFF { break }
            if p - start >= 16 { return nil }
            v = v << 4 | UInt64(d)
            p += 1
        }
        return p > start ? (v, p) : nil
    }

    private static func find(_ needle: [UInt8], in b: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard !needle.isEmpty else { return start }
        guard b.count >= needle.count else { return nil }
        var i = start
        while i <= b.count - needle.count {
            if b[i] == needle[0] {
                var j = 1
                while j < needle.count && b[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }
}
