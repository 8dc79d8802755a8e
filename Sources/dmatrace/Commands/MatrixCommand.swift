import Analysis
import ArgumentParser
import Reports

/// `dmatrace matrix TRACE... [--kernels ...] [--modes ...]` (``MatrixRun``).
struct MatrixCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matrix",
        abstract: "Outcomes per trace × kernel × mode × device, and the modes in which every selected kernel works.",
        discussion: """
            Each trace is decoded once for all kernel × mode scenarios. Kernels and modes are model ids \
            (comma-separated or repeated; a kernel may carry +off, +pt, +strict or +lazy, a mode +transitional or \
            +modern for virtio devices created with disable-legacy=off or on). By default the kernels are every \
            non-hypothetical model that can run this kind of VM (legacy-only and confidential-guest kernels only \
            when a trace needs them), and the modes every non-hypothetical mode as recorded and with each virtio \
            transport QEMU allows.

            The output leads with the answer: the modes in which every kernel works (DMA isolated, or honestly not), \
            the unsafe alternative (DMA that bypasses an IOMMU the guest trusts is never counted as working), one \
            kernel × mode grid per trace, what blocks which modes, and what a device property would change. \
            --details prints every device of every cell instead.

            \(ExitStatus.helpText)
            """)

    @OptionGroup var selection: MatrixSelectionOptions
    @OptionGroup var output: ReplayOutputOptions
    @OptionGroup var scale: ScaleOptions
    @OptionGroup var quiet: QuietOption

    func validate() throws { try selection.validate(output: output, scale: scale) }

    func run() throws {
        var damaged = false, baselineFails = false
        try runReportingErrors {
            let catalog = try selection.models.catalog()
            let run = try selection.run(catalog: catalog, scale: scale)
            let meter = run.meter()
            let replayed = try ProgressDisplay.run("matrix", meter: meter, quiet: quiet.quiet) { shown in
                try run.replay(catalog: catalog, meter: meter, counting: shown)
            }
            for r in replayed { for w in r.warnings { warn(w) } }
            damaged = replayed.contains { !$0.warnings.isEmpty }
            baselineFails = try output.emitMatrix(run: run, replayed: replayed, details: selection.details)
        }
        if damaged { throw ExitStatus.damaged }
        if baselineFails { throw ExitStatus.findings }
    }
}
