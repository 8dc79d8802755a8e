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

/// Buffered standard output: lines are collected and written in large blocks.
struct StandardOutput {
    private var buffer: [UInt8] = []

    init() { buffer.reserveCapacity(1 << 16) }

    mutating func line(_ s: String) throws {
        buffer.append(contentsOf: s.utf8)
        buffer.append(0x0A)
        if buffer.count >= 1 << 16 { try flush() }
    }

    mutating func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { _ = try FileDescriptor.standardOutput.writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }
}
