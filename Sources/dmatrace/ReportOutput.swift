import ArgumentParser
import Reports
import TraceFormat
import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `--format`, `-o` and `--no-clobber`, shared by every command that prints a report.
struct ReportOutputOptions: ParsableArguments {
    @Option(name: .long, help: "Output format: text, json, junit, sarif, markdown or html.")
    var format: ReportFormatArgument = .text

    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp(OutputHelp.output, discussion: OutputHelp.discussion))
    var output: String?

    @Flag(help: OutputHelp.noClobber)
    var noClobber = false

    /// Renders `report` and writes it; text gets colour only when going to a terminal.
    func emit(_ report: Report, inputs: [String]) throws {
        let colour = output == nil && format.value == .text && isTerminal(.standardOutput)
        try write(try format.value.renderer(colour: colour).render(report), inputs: inputs)
    }

    /// Writes `text` to ``output`` or standard output (``StreamingOutput``).
    func write(_ text: String, inputs: [String]) throws {
        try StreamingOutput(path: output, inputs: inputs, noClobber: noClobber).run { write in try write(text) }
    }
}

/// The help of every `-o` and `--no-clobber`.
enum OutputHelp {
    static let output = "Write to FILE instead of standard output (a file atomically; - is standard output)."
    static let discussion = """
        A regular file is written to a temporary file beside it and renamed over it when complete; a symbolic \
        link is followed (the file it points to is replaced, the link kept); a character device or FIFO \
        (/dev/null, a named pipe) is written in place; an existing file is overwritten unless --no-clobber. \
        Writing over an input of the same command is refused (exit 2).
        """
    static let noClobber = ArgumentHelp("Refuse to overwrite an existing output file (exit 2).")
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

/// Output written in pieces to standard output (no path, or `-`), a stream written in place, or a file
/// written atomically: the one way every report and export reaches its `-o` (``OutputTarget``), so a failed
/// or refused write never leaves a partial file under the target name nor touches an input.
struct StreamingOutput {
    var path: String?
    /// The files the command reads: writing over one of them is refused.
    var inputs: [String] = []
    var noClobber = false

    /// Calls `body` with a writer; on success the output is committed (a file renamed into place).
    func run(_ body: ((String) throws -> Void) throws -> Void) throws {
        let out = try OutputFile(try OutputTarget.resolve(path ?? "-", inputs: inputs, noClobber: noClobber))
        do {
            try body { text in try out.write(text) }
            try out.commit()
        } catch {
            out.discard()
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
