import ArgumentParser
import FoundationEssentials
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

    @Option(help: "Output format: text, or json (an array with one object per file: path, ok, events, chunks, damage, error).")
    var format: TextOrJSON = .text

    /// The old spelling of `--format json`.
    @Flag(help: .hidden)
    var json = false

    @OptionGroup var output: OutputOptions

    func validate() throws { try Terminal.refuseBinaryInput(files) }

    struct FileResult: Codable {
        /// `ok`, `damaged` (exit 3) or `unreadable` (not a trace, I/O error: exit 2).
        var status: String
        var path: String
        var events: UInt64 = 0
        var chunks = 0
        var complete = false
        var damage: [TraceDamage] = []
        var error: String?
    }

    func run() throws {
        try runReportingErrors {
            var results: [FileResult] = []
            for path in files {
                do {
                    let reader = try TraceReader(path: path)
                    try reader.verify()
                    results.append(FileResult(status: reader.damage.isEmpty ? "ok" : "damaged", path: path,
                                              events: reader.eventCount, chunks: reader.chunks.count,
                                              complete: reader.isComplete, damage: reader.damage))
                } catch let error as TraceFormatError where error.isDamage {
                    warn("\(error)")
                    results.append(FileResult(status: "damaged", path: path, error: "\(error)"))
                } catch {
                    warn("\(error)")
                    results.append(FileResult(status: "unreadable", path: path, error: "\(error)"))
                }
            }
            let json = json || format == .json
            var out = try StandardOutput(escaping: !json, to: output, inputs: files)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
                try out.line(String(decoding: try encoder.encode(results), as: UTF8.self))
            } else {
                for r in results {
                    switch (r.status, r.error) {
                    case ("ok", _):
                        if !quiet { try out.line("\(r.path): ok: \(r.events) events in \(r.chunks) chunks, checksums verified") }
                    case ("damaged", let e?):
                        try out.line("\(r.path): DAMAGED: \(e)")
                    case ("damaged", nil):
                        let lost = r.damage.compactMap(\.lostEvents).reduce(0, +)
                        try out.line("\(r.path): DAMAGED: \(r.damage.count) problem(s); \(r.events) events readable, at least \(lost) lost")
                        for d in r.damage { try out.line("  \(d)") }
                    default:
                        break  // unreadable: already on stderr
                    }
                }
            }
            try out.commit()
            if results.contains(where: { $0.status == "unreadable" }) { throw ExitStatus.inputError }
            if results.contains(where: { $0.status == "damaged" }) { throw ExitStatus.damaged }
        }
    }
}
