import ArgumentParser
import TraceIngest

/// `dmatrace ingest`: turns captures (ftrace text, trace.dat, QEMU log, simpletrace, dmesg, JSONL) into
/// one `.dmat`, merging guest and host inputs of one run onto one clock (``IngestRequest``).
struct IngestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Import captures into one .dmat trace.",
        discussion: """
            Inputs may be plain, zstd- or gzip-compressed (detected from their first bytes), or `-` for stdin. \
            With --input-format auto (the default) each input's format is sniffed. Several inputs of one run (guest \
            ftrace or trace.dat, QEMU log, dmesg) are merged: guest and host clocks are aligned from matching \
            events and device-less guest iommu events are attributed to devices; the summary on stderr reports \
            the alignment quality.

            \(ExitStatus.helpText)
            """)

    @OptionGroup var sources: IngestSourceOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var options: IngestOptions
    @OptionGroup var quiet: QuietOption

    func validate() throws { try options.validate(sources, output: output) }

    func run() throws {
        try runReportingErrors { try options.request(sources, output: output).run(IngestConsole(quiet: quiet.quiet)) }
    }
}
