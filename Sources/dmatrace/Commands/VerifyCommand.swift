import ArgumentParser
import TraceFormat

/// `dmatrace verify`: decode every chunk and check every checksum.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a .dmat trace: frames, chunk headers, zstd checksums, chunk order and the index.",
        discussion: """
            Prints one line per file when intact; otherwise every damaged place (chunk number, byte offset, \
            what is wrong, events lost); -q prints nothing for intact files. Every file is checked even when an earlier \
            one fails. Exit status: \
            0 every file intact; 3 damage found in some file (the rest of it is still readable); 2 some file \
            is not a trace or cannot be read (this wins over 3); 64 usage error.
            """)

    @Argument(help: "Trace files, or '-' for standard input.")
    var files: [String] = ["-"]

    @OptionGroup var quietOption: QuietOption
    /// Prints nothing for intact files.
    var quiet: Bool { quietOption.quiet }

    @Option(
        help:
            "Output format: text, or json (an array with one object per file: path, ok, events, chunks, damage, error)."
    )
    var format: TextOrJSON = .text

    /// The old spelling of `--format json`.
    @Flag(help: .hidden)
    var json = false

    @OptionGroup var output: OutputOptions

    func validate() throws { try Terminal.refuseBinaryInput(files) }

    func run() throws {
        try runReportingErrors {
            let results = files.map { path in
                let r = TraceVerification.check(path)
                if let e = r.error { warn(e) }
                return r
            }
            let json = json || format == .json
            var out = try StandardOutput(escaping: !json, to: output, inputs: files)
            if json {
                try out.line(try TraceVerification.json(results))
            } else {
                for r in results { for l in r.text(quiet: quiet) { try out.line(l) } }
            }
            try out.commit()
            if results.contains(where: { $0.status == "unreadable" }) { throw ExitStatus.inputError }
            if results.contains(where: { $0.status == "damaged" }) { throw ExitStatus.damaged }
        }
    }
}
