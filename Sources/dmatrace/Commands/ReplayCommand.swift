import ArgumentParser
import Foundation
import Models
import Replay
import Reports
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

    @Argument(help: "The trace (.dmat, or .jsonl; - is standard input).") var trace: String
    @Option(
        name: .customLong("scenario"), help: "KERNEL[:RELEASE][+GUEST-IOMMU]@MODE[:QEMU[/MACHINE]] (repeatable).",
        completion: ModelCompletion.scenario)
    var scenarios: [String] = []
    @Flag(help: "Also replay the recorded scenario and check fidelity.") var recorded = false
    @OptionGroup var models: ModelOptions
    @OptionGroup var hypotheses: HypothesisOptions
    @Option(
        help:
            "Clock-skew tolerance between guest and host events, in milliseconds (default: 3x the trace's measured residual skew, at least 1 ms). A host translation later than this after its buffer's unmap is a use after unmap."
    ) var skewMs: Double?
    @Flag(help: "Exit 1 when a scenario fails or the recorded scenario diverges.") var failOnFindings = false
    /// Scenarios replay on at most two threads (more work like two); results do not depend on it.
    @OptionGroup var threads: ThreadsOption
    @OptionGroup var output: ReplayOutputOptions
    @OptionGroup var quiet: QuietOption

    func validate() throws {
        if scenarios.isEmpty && !recorded { throw ValidationError("give at least one --scenario, or --recorded") }
        if let skewMs {
            guard skewMs >= 0, skewMs <= 60_000 else { throw ValidationError("--skew-ms must be in 0...60000") }
        }
        try Terminal.refuseBinaryInput([trace])
        // A scenario that does not parse is a usage error; an unknown model id, or a model directory that does
        // not load, is an input error reported by run (2).
        if let catalog = try? models.catalog() {
            for s in scenarios {
                do { _ = try Scenario.parse(s, catalog: catalog) } catch {
                    if case .badScenario = error { throw ValidationError("\(error)") }
                }
            }
        }
    }

    func run() throws {
        var damaged = false, failed = false, baselineFails = false
        try runReportingErrors {
            let catalog = try models.catalog()
            var list = try scenarios.map { try Scenario.parse($0, catalog: catalog) }
            let scenarioThreads =
                threads.threads != nil || ProcessInfo.processInfo.environment["DMATRACE_THREADS"] != nil
                ? min(2, threads.count(default: 2)) : nil
            let options = ReplayOptions(
                skewToleranceNs: skewMs.map { UInt64($0 * 1_000_000) }, hypotheses: Set(hypotheses.hypotheses),
                scenarioThreads: scenarioThreads)
            let opened = try OpenedTrace.open(trace)
            let (evidence, inferred) = try RecordedScenario.inferWithEvidence(opened.source, catalog: catalog)
            let rec = try? inferred.get()
            if recorded {
                if case let .failure(e) = inferred { throw ValidationError("cannot tell the recorded scenario: \(e)") }
                if let rec, !list.contains(where: { $0.id == rec.id }) { list.insert(rec, at: 0) }
            }
            let engine = ReplayEngine(scenarios: list, recorded: rec, options: options, evidence: evidence)
            let meter = ProgressMeter(unit: "events")
            let result = try ProgressDisplay.run("replay", meter: meter, quiet: quiet.quiet) { shown in
                shown
                    ? try engine.run(meter.counting(opened.source), tracePath: trace)
                    : try engine.run(opened.source, tracePath: trace)
            }
            let damage = opened.damage()
            for d in damage { warn("\(trace): \(d)") }
            damaged = !damage.isEmpty
            if output.wantsReport {
                baselineFails = try output.emitReport(command: "replay", results: [result], inputs: [trace])
            } else {
                try output.wantsReplayJSON
                    ? output.write(try ReportJSON.string(result), inputs: [trace])
                    : output.writeText(result.text(), inputs: [trace])
                baselineFails = output.fails(command: "replay", results: [result])
            }
            // Evidence contradicting the recorded facts is a finding too (the notes name it).
            failed =
                result.scenarios.contains { !$0.works || !$0.divergences.isEmpty } || result.evidenceConflicts != nil
        }
        if damaged { throw ExitStatus.damaged }
        if (failOnFindings && failed) || baselineFails { throw ExitStatus.findings }
    }
}
