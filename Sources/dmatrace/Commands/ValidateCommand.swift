import ArgumentParser

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

    @OptionGroup var validation: ValidateOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var quiet: QuietOption
    @OptionGroup var models: ModelOptions

    func run() throws {
        var passes = true
        try runReportingErrors {
            let text = try validation.text(try validation.run(catalog: try models.catalog()))
            // JSON and the Markdown tables are printed as they are (the text escaping would escape their newlines).
            var out = try StandardOutput(escaping: false, to: output, inputs: validation.inputs)
            try out.line(text)
            try out.commit()
            passes = try validation.checkPasses(text)
        }
        if !passes { throw ExitStatus.findings }
    }
}
