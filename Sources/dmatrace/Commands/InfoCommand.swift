import ArgumentParser
import Models
import Replay
import TraceFormat

/// `dmatrace info`: what a trace holds (``TraceSummary``).
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show a trace's header, capture facts, devices, event counts per kind, time span, chunks and damage.",
        discussion: """
            Decodes the whole trace (so counts and damage are exact). Exit status: 0 ok; 3 the trace is \
            damaged (shown under "damage", counts cover what was readable); 2 not a trace or unreadable; \
            64 usage error.
            """)

    @Argument(help: "Trace file, or '-' for standard input.")
    var file: String = "-"

    @Option(help: "Output format: text, or json (one object, keys sorted).")
    var format: TextOrJSON = .text

    /// The old spelling of `--format json`.
    @Flag(help: .hidden)
    var json = false

    @OptionGroup var output: OutputOptions
    @OptionGroup var quiet: QuietOption

    func validate() throws { try Terminal.refuseBinaryInput([file]) }

    @Flag(help: "Also list every chunk: number, byte offset, events, time range, compressed bytes, state.")
    var chunks = false

    func run() throws {
        try runReportingErrors {
            let reader = try openTrace(file)
            // Standard input is read once: there the evidence scan is the pass that decodes (and checks) every chunk.
            let evidence = file == "-" ? try ScenarioEvidence.scan(reader) : nil
            if evidence == nil { try reader.verify() }
            var summary = TraceSummary(reader, chunks: chunks)
            if reader.damage.isEmpty {
                try summary.addRecordedScenario(
                    evidence ?? ScenarioEvidence.scan(reader), metadata: reader.metadata,
                    catalog: try ModelCatalog.builtin())
            }
            let json = json || format == .json
            var out = try StandardOutput(escaping: !json, to: output, inputs: [file])
            if json {
                try out.line(try summary.json())
            } else {
                for l in summary.text { try out.line(l) }
            }
            try out.commit()
            if !reader.damage.isEmpty { throw ExitStatus.damaged }
        }
    }
}
