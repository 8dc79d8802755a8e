import ArgumentParser
import Reports
import TraceFormat

/// `dmatrace merge PART...`: recombines `matrix --shard` parts (``ShardPart``) into the report of the unsharded run.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Recombine the parts written by `matrix --shard I/N` into the report of the unsharded run.",
        discussion: """
            Give every part (any order). The merged report is byte-identical to the report `matrix` writes \
            without --shard for the same traces, scenarios and --format.

            \(ExitStatus.helpText)
            """)

    @Argument(help: "Part files written by `matrix --shard`.") var parts: [String]
    @Option(name: .long, help: "Output format: text, json, junit, sarif, markdown or html.")
    var format: ReportFormatArgument = ReportFormatArgument(.json)
    @OptionGroup var output: OutputOptions
    @OptionGroup var baseline: BaselineOptions
    @OptionGroup var quiet: QuietOption

    func validate() throws {
        if parts.isEmpty { throw ValidationError("give at least one part") }
    }

    func run() throws {
        var fail = false
        try runReportingErrors {
            let meter = ProgressMeter(unit: "parts", total: UInt64(parts.count))
            let loaded = try ProgressDisplay.run("merge", meter: meter, quiet: quiet.quiet) { _ in
                try parts.map { path in
                    defer { meter.add(1) }
                    return (path, try ShardPart.load(path))
                }
            }
            let (command, results) = try ShardPart.merge(loaded)
            let (report, f) = try baseline.apply(
                to: Report(command: command, results: results, axis: loaded.first?.1.axis))
            fail = f
            let text = try format.value.renderer(colour: false).render(report)
            try output.write(text, inputs: parts + [baseline.baseline].compactMap { $0 })
        }
        if fail { throw ExitStatus.findings }
    }
}
