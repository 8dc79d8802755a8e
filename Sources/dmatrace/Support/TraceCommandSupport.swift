import ArgumentParser
import SystemPackage
import TraceFormat

/// Opens a trace for a command. A trace whose header is cut or damaged is reported and exits 3;
/// anything else unreadable exits 2 (through `runReportingErrors`).
func openTrace(_ path: String) throws -> TraceReader {
    do {
        return try TraceReader(path: path)
    } catch let error as TraceFormatError where error.isDamage {
        warn("\(error)")
        throw ExitStatus.damaged
    }
}

/// Buffered line output to `-o` (``OutputOptions``; standard output by default): lines are collected and
/// written in large blocks; ``commit()`` finishes the file (renamed into place), and an output never committed
/// is discarded. Text lines (not JSON, whose encoder escapes control characters itself) are escaped by
/// ``TextSafety``.
struct StandardOutput {
    private var buffer: [UInt8] = []
    private let escaping: Bool
    private let file: OutputFile

    /// `inputs` are the files the command reads (writing over one is refused).
    init(escaping: Bool = true, to options: OutputOptions? = nil, inputs: [String] = []) throws {
        self.escaping = escaping
        file = try OutputFile(
            try OutputTarget.resolve(options?.output ?? "-", inputs: inputs, noClobber: options?.noClobber ?? false))
        buffer.reserveCapacity(1 << 16)
    }

    mutating func line(_ s: String) throws {
        try line { $0.append(contentsOf: s.utf8) }
    }

    /// A line `write` appends as UTF-8 bytes straight into the buffer; escaped like ``line(_:)`` when it holds
    /// anything but printable ASCII (checked on the bytes just written).
    mutating func line(writing write: (inout [UInt8]) -> Void) throws {
        let start = buffer.count
        write(&buffer)
        if escaping, buffer[start...].contains(where: { $0 < 0x20 || $0 >= 0x7F }) {
            let text = String(decoding: buffer[start...], as: UTF8.self)
            buffer.removeSubrange(start...)
            buffer.append(contentsOf: TextSafety.escaped(text).utf8)
        }
        buffer.append(0x0A)
        if buffer.count >= 1 << 16 { try flush() }
    }

    mutating func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try file.write($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Writes what is buffered and finishes the output.
    mutating func commit() throws {
        try flush()
        try file.commit()
    }
}

/// `--format text|json` of `info`, `verify` and `models list`.
enum TextOrJSON: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// Warns of the damage found in `opened` (read from `path`); true when there was any (exit 3).
func warnDamage(_ opened: OpenedTrace, _ path: String) -> Bool {
    let damage = opened.damage()
    for d in damage { warn("\(path): \(d)") }
    return !damage.isEmpty
}
