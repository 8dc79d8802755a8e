import ArgumentParser

/// The trace `cat` prints, and how.
struct CatOptions: ParsableArguments {
    @Argument(help: "Trace file, or '-' for standard input.")
    var file: String = "-"

    /// The output format.
    enum Format: String, ExpressibleByArgument, CaseIterable { case text, jsonl }

    @Option(help: "Output format: text (lines) or jsonl (the metadata line, then one JSON object per event).")
    var format: Format = .text

    /// The old spelling of `--format jsonl`.
    @Flag(help: .hidden)
    var jsonl = false

    /// True for JSONL output.
    var isJSONL: Bool { jsonl || format == .jsonl }

    /// Made after the event filter's checks (the command's `validate()`).
    func check() throws { try Terminal.refuseBinaryInput([file]) }
}
