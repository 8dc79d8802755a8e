import ArgumentParser
import Models
import Replay
import TraceFormat

/// `dmatrace replay TRACE --scenario KERNEL@MODE ... [--recorded]`.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a trace under kernel × QEMU-mode scenarios in one decode pass.",
        discussion: """
            A scenario is KERNEL[:RELEASE][+GUEST-IOMMU]@MODE[:QEMU[/MACHINE]], e.g. \
            linux-4.0-bypass@qemu-viommu-virtio-translated, linux-6.1+lazy@qemu-viommu-virtio-translated or \
            linux-5.4:5.8@qemu-amd-iommu:10.0 (guest IOMMU: off, pt, strict, lazy, default = the kernel's own policy; \
            unset: as recorded; RELEASE defaults to the model's default release, QEMU to 7.2, MACHINE to the QEMU \
            version). `dmatrace models list` shows the model ids and their version ranges. --recorded adds the scenario the trace was recorded under \
            and checks that its replay reproduces the recorded faults and translations (divergences are listed). \
            A --scenario that does not parse is a usage error (64); an unknown model id is an input error (2).

            \(ExitStatus.helpText)
            """)

    @OptionGroup var selection: ReplaySelectionOptions
    @OptionGroup var output: ReplayOutputOptions
    @OptionGroup var quiet: QuietOption

    func validate() throws { try selection.check() }

    func run() throws {
        var damaged = false, failed = false, baselineFails = false
        try runReportingErrors {
            let catalog = try selection.models.catalog()
            let parsed = try selection.scenarios.map { try Scenario.parse($0, catalog: catalog) }
            let (trace, opened) = (selection.trace, try OpenedTrace.open(selection.trace))
            let engine = try selection.engine(opened.source, parsed: parsed, catalog: catalog)
            let meter = ProgressMeter(unit: "events")
            let result = try ProgressDisplay.run("replay", meter: meter, quiet: quiet.quiet) { shown in
                shown
                    ? try engine.run(meter.counting(opened.source), tracePath: trace)
                    : try engine.run(opened.source, tracePath: trace)
            }
            damaged = warnDamage(opened, trace)
            baselineFails = try output.emitReplay(result, inputs: [trace])
            // Evidence contradicting the recorded facts is a finding too (the notes name it).
            failed = result.hasFindings
        }
        if damaged { throw ExitStatus.damaged }
        if (selection.failOnFindings && failed) || baselineFails { throw ExitStatus.findings }
    }
}
