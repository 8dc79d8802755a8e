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

/// Buffered standard output: lines are collected and written in large blocks. Text lines (not JSON, whose
/// encoder escapes control characters itself) are escaped by ``TextSafety``.
struct StandardOutput {
    private var buffer: [UInt8] = []
    private let escaping: Bool

    init(escaping: Bool = true) {
        self.escaping = escaping
        buffer.reserveCapacity(1 << 16)
    }

    mutating func line(_ s: String) throws {
        buffer.append(contentsOf: (escaping ? TextSafety.escaped(s) : s).utf8)
        buffer.append(0x0A)
        if buffer.count >= 1 << 16 { try flush() }
    }

    mutating func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { _ = try FileDescriptor.standardOutput.writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }
}
