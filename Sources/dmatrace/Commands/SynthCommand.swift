import ArgumentParser
import TraceFormat
import TraceIngest

/// `dmatrace synth`: writes a deterministic synthetic workload of any size (``SyntheticWorkload``).
struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Write a deterministic synthetic virtio DMA workload as a .dmat trace.",
        discussion: """
            Several virtio-blk and virtio-net devices behind a translating vIOMMU, as a Linux ≥ 6.12 guest \
            (dma:* events) under QEMU with vtd_* tracing would record them: per-request header/data/status maps, \
            premapped RX chunks, Linux-like IOVA reuse and, optionally, host-side translations and planted bugs. \
            The same options and seed always give the same file. Memory stays bounded by the requests in flight.

            \(ExitStatus.helpText)
            """)

    @OptionGroup var output: OutputOptions
    @OptionGroup var quiet: QuietOption
    @OptionGroup var options: SynthOptions

    func validate() throws { try options.validate(output: output) }

    func run() throws {
        try runReportingErrors {
            let meter = ProgressMeter(unit: "events", total: UInt64(options.events))
            let summary = try ProgressDisplay.run("synth", meter: meter, quiet: quiet.quiet) { _ in
                try options.workload.write(
                    to: output.output ?? "-", options: options.writer, noClobber: output.noClobber, meter: meter)
            }
            if !quiet.quiet { warn("synth: \(summary)") }
        }
    }
}
