import ArgumentParser
import FoundationEssentials
import Replay
import Reports
import TraceFormat

/// `dmatrace validate`: event-level cross-validation of real captures of one workload (docs/replay.md, traces/README.md).
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract:
            "Replay every capture under every other capture's recorded scenario and compare the predicted DMA stream with the real one.",
        discussion: """
            For every ordered pair (A, B) of the given traces (real captures of the same workload), the capture of \
            A is replayed under B's recorded scenario and its predicted stream is compared per device with B's real \
            stream: maps, unmaps, translations, IOTLB invalidations, swiotlb bounces (cell: predicted/real \
            ±error, the trace-free baseline's error in parentheses), faults by reason and page (keys that differ), \
            and the IOVA sequence (IOVAs equal from the start / compared). A trace named NAME-boot2 next to NAME \
            gives that configuration's boot-to-boot spread, the noise floor. With --under B..., only the pairs (A, B) \
            with A among the traces and B among those captures are compared (cross-version predictions: captures \
            of one kernel and QEMU under the scenarios of captures of others). The trace name is the file name \
            without .dmat. Prints Markdown. Exit status: 0 ok; 1 --check FILE does not contain the tables; \
            2 a trace is unreadable or its recorded scenario cannot be told; 64 usage error.
            """)

    @Argument(help: "The captures (.dmat or .jsonl), at least two.")
    var traces: [String] = []

    @Option(
        name: .long, parsing: .upToNextOption,
        help:
            "Replay the captures only under the recorded scenarios of these captures (cross-version predictions: captures of one kernel and QEMU under the scenarios of captures of others). Without it, every ordered pair of the captures."
    )
    var under: [String] = []

    @Option(help: "Exit 1 unless FILE contains the printed tables verbatim (e.g. traces/README.md).")
    var check: String?

    /// The output format.
    enum Format: String, ExpressibleByArgument, CaseIterable { case markdown, json }

    @Option(help: "Output format: markdown (the tables), or json (the per-pair metrics).")
    var format: Format = .markdown

    /// The old spelling of `--format json`.
    @Flag(help: .hidden)
    var json = false

    @OptionGroup var output: OutputOptions
    @OptionGroup var quiet: QuietOption

    @OptionGroup var models: ModelOptions

    func validate() throws {
        if under.isEmpty && traces.count < 2 {
            throw ValidationError("give at least two traces (or some traces and --under)")
        }
        if !under.isEmpty && traces.isEmpty {
            throw ValidationError("give the traces to replay under the --under captures' scenarios")
        }
        try Terminal.refuseBinaryInput(traces + under)
    }

    func run() throws {
        var mismatch = false
        try runReportingErrors {
            let catalog = try models.catalog()
            func load(_ paths: [String]) throws -> [CrossValidation.Capture] {
                try paths.map { path in
                    let (capture, damage) = try CrossValidation.Capture.load(path)
                    for d in damage { warn("\(path): \(d)") }
                    return capture
                }
            }
            let sources = try load(traces)
            let result = try CrossValidation.run(
                sources, under: under.isEmpty ? sources : try load(under), catalog: catalog)
            let json = json || format == .json
            let text = json ? try ReportJSON.text(result) : CrossValidation.markdown(result)
            // JSON and the Markdown tables are printed as they are (the text escaping would escape their newlines).
            var out = try StandardOutput(
                escaping: false, to: output, inputs: traces + under + [check].compactMap { $0 })
            try out.line(text)
            try out.commit()
            if let check {
                let body = try String(contentsOfFile: check, encoding: .utf8)
                if !body.contains(text) {
                    warn("validate: the measured tables differ from the ones in \(check)")
                    mismatch = true
                }
            }
        }
        if mismatch { throw ExitStatus.findings }
    }
}
