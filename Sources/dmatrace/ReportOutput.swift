import ArgumentParser
import Reports
import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `--format` and `-o`, shared by every command that prints a report.
struct ReportOutputOptions: ParsableArguments {
    @Option(name: .long, help: "Output format: text, json, junit, sarif, markdown or html.")
    var format: ReportFormatArgument = .text

    @Option(name: [.customShort("o"), .customLong("output")], help: "Write the report to FILE (atomically) instead of standard output.")
    var output: String?

    /// Renders `report` and writes it; text gets colour only when going to a terminal.
    func emit(_ report: Report) throws {
        let colour = output == nil && format.value == .text && isTerminal(.standardOutput)
        try write(try format.value.renderer(colour: colour).render(report))
    }

    /// Writes `text` to ``output`` (atomically) or standard output.
    func write(_ text: String) throws {
        if let output {
            try writeAtomically(text, to: output)
        } else {
            var t = text
            _ = try t.withUTF8 { try FileDescriptor.standardOutput.writeAll(UnsafeRawBufferPointer($0)) }
        }
    }
}

/// ``ReportFormat`` as a command-line value.
struct ReportFormatArgument: ExpressibleByArgument {
    var value: ReportFormat
    init(_ value: ReportFormat) { self.value = value }
    init?(argument: String) {
        guard let f = ReportFormat(rawValue: argument) else { return nil }
        value = f
    }
    static var allValueStrings: [String] { ReportFormat.allCases.map(\.rawValue) }
    static let text = ReportFormatArgument(.text)
    var defaultValueDescription: String { value.rawValue }
}

/// True when `fd` is a terminal and `NO_COLOR` is not set (https://no-color.org).
func isTerminal(_ fd: FileDescriptor) -> Bool {
    isatty(fd.rawValue) == 1 && getenv("NO_COLOR") == nil
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename, so readers never
/// see a half-written report.
func writeAtomically(_ text: String, to path: String) throws {
    try StreamingOutput(path: path).run { write in try write(text) }
}

/// Reads a whole file (report JSON) with a size limit.
func readWholeFile(_ path: String, limit: Int = 1 << 30) throws -> [UInt8] {
    let fd: FileDescriptor
    do {
        fd = try FileDescriptor.open(FilePath(path), .readOnly)
    } catch {
        throw InputFileError(message: "\(path): cannot open: \(error)")
    }
    return try fd.closeAfter {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n: Int
            do {
                n = try chunk.withUnsafeMutableBytes { try fd.read(into: $0) }
            } catch {
                throw InputFileError(message: "\(path): cannot read: \(error)")
            }
            if n == 0 { break }
            guard out.count + n <= limit else { throw InputFileError(message: "\(path): larger than \(limit) bytes") }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }
}

/// Output written in pieces: to standard output, or to a temporary file renamed onto the target at the end
/// (so a failed export never leaves a partial file under the target name).
struct StreamingOutput {
    var path: String?

    /// Calls `body` with a writer; on success the file (if any) is renamed into place.
    func run(_ body: ((String) throws -> Void) throws -> Void) throws {
        guard let path else {
            try body { text in
                var t = text
                _ = try t.withUTF8 { try FileDescriptor.standardOutput.writeAll(UnsafeRawBufferPointer($0)) }
            }
            return
        }
        let target = FilePath(path)
        let dir = target.removingLastComponent()
        let tmpName = ".\(target.lastComponent?.string ?? "export").tmp-\(getpid())"
        let tmp = dir.string.isEmpty ? FilePath(tmpName) : dir.appending(tmpName)
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(tmp, .writeOnly, options: [.create, .truncate], permissions: [.ownerReadWrite, .groupRead, .otherRead])
        } catch {
            throw InputFileError(message: "\(path): cannot create \(tmp.string): \(error)")
        }
        do {
            try fd.closeAfter {
                try body { text in
                    var t = text
                    do {
                        _ = try t.withUTF8 { try fd.writeAll(UnsafeRawBufferPointer($0)) }
                    } catch {
                        throw InputFileError(message: "\(path): cannot write \(tmp.string): \(error)")
                    }
                }
                // The data reaches the disk before the rename makes it visible under the target name.
                guard fsync(fd.rawValue) == 0 else {
                    throw InputFileError(message: "\(path): cannot sync \(tmp.string): \(Errno(rawValue: errno))")
                }
            }
            guard rename(tmp.string, target.string) == 0 else {
                throw InputFileError(message: "\(path): cannot rename \(tmp.string) to it: \(Errno(rawValue: errno))")
            }
        } catch {
            _ = tmp.withPlatformString { unlink($0) }
            throw error
        }
    }
}

/// A file that cannot be read or written, its path first in the message (exit status 2 through
/// ``runReportingErrors``).
struct InputFileError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
