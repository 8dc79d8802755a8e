import ArgumentParser

/// What `export` exports, in which format, and the report whose findings it marks too.
struct ExportOptions: ParsableArguments {
    @Flag(name: .long, help: "Chrome / Perfetto trace-event JSON (the same as --format perfetto).")
    var perfetto = false

    @Option(
        name: .long, help: "Output format: perfetto (Chrome / Perfetto trace-event JSON, the only one).",
        completion: .list(["perfetto"]))
    var format: String?

    @OptionGroup var filterOptions: EventFilterOptions

    @Argument(help: "Trace (.dmat or dmatrace JSONL).")
    var trace: String

    @Option(name: .long, help: "A report JSON whose findings for this trace are marked too.")
    var findings: String?

    func validate() throws {
        try Terminal.refuseBinaryInput([trace])
        if let format, format != "perfetto" {
            throw ValidationError("unknown export format '\(format)'; known: perfetto")
        }
        guard perfetto || format == "perfetto" else {
            throw ValidationError("choose an export format: --format perfetto (or --perfetto)")
        }
    }
}
