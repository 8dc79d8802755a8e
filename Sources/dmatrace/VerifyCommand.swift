import ArgumentParser
import TraceFormat

/// `dmatrace verify`: decode every chunk and check every checksum.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a .dmat trace: frames, chunk headers, zstd checksums, chunk order and the index.",
        discussion: """
            Prints one line per file when intact; otherwise every damaged place (chunk number, byte offset, \
            what is wrong, events lost). Exit status: 0 every file intact; 3 damage found (the rest of the \
            trace is still readable); 2 not a trace or unreadable; 64 usage error.
            """)

    @Argument(help: "Trace files, or '-' for standard input.")
    var files: [String] = ["-"]

    @Flag(name: .shortAndLong, help: "Print nothing for intact files.")
    var quiet = false

    func run() throws {
        try runReportingErrors {
            var damaged = false
            var out = StandardOutput()
            for path in files {
                let reader = try openTrace(path)
                try reader.verify()
                let events = reader.eventCount
                if reader.damage.isEmpty {
                    if !quiet {
                        try out.line("\(path): ok: \(events) events in \(reader.chunks.count) chunks, checksums verified")
                    }
                    continue
                }
                damaged = true
                let lost = reader.damage.compactMap(\.lostEvents).reduce(0, +)
                try out.line("\(path): DAMAGED: \(reader.damage.count) problem(s); \(events) events readable, at least \(lost) lost")
                for d in reader.damage { try out.line("  \(d)") }
            }
            try out.flush()
            if damaged { throw ExitStatus.damaged }
        }
    }
}
