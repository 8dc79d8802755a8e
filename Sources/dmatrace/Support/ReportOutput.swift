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

    @OptionGroup var output: OutputOptions

    /// Renders `report` and writes it; text gets colour only when going to a terminal.
    func emit(_ report: Report, inputs: [String], showUnchanged: Bool = false) throws {
        let colour = output.output == nil && format.value == .text && wantsColour(.standardOutput)
        try output.write(
            try format.value.renderer(colour: colour, showUnchanged: showUnchanged).render(report), inputs: inputs)
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
    static var defaultCompletionKind: CompletionKind { .list(allValueStrings) }
    static let text = ReportFormatArgument(.text)
    var defaultValueDescription: String { value.rawValue }
}

/// True when `fd` is a terminal (``Terminal``) and `NO_COLOR` is not set (https://no-color.org).
func wantsColour(_ fd: FileDescriptor) -> Bool {
    Terminal.isTerminal(fd) && getenv("NO_COLOR") == nil
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
