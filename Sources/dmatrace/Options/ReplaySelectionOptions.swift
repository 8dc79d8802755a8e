import ArgumentParser
import Foundation
import Models
import Replay
import TraceFormat

/// What `replay` replays: the trace, its scenarios (and the recorded one), models, hypotheses and the replay's
/// tolerance and threads (``ReplayEngine/recorded(_:scenarios:addingRecorded:catalog:options:)``).
struct ReplaySelectionOptions: ParsableArguments {
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
    @Option(
        help: ArgumentHelp(
            "How many timer/CPU hypotheses per domain the recorded scenario's IOVA allocator check keeps, comma-separated: each next one is tried when the previous leaves divergences (not on standard input). Default 96,1000,10000, a wider one only while allocations × hypotheses stays within 5×10^7; given, each is tried.",
            valueName: "N[,N...]")
    ) var allocatorSearch: String?
    @Flag(help: "Exit 1 when a scenario fails or the recorded scenario diverges.") var failOnFindings = false
    /// Scenarios replay on at most two threads (more work like two); results do not depend on it.
    @OptionGroup var threads: ThreadsOption

    /// The checks of `replay`, made after the output options' (the command's `validate()`).
    func check() throws {
        if scenarios.isEmpty && !recorded { throw ValidationError("give at least one --scenario, or --recorded") }
        if let skewMs {
            guard skewMs >= 0, skewMs <= 60_000 else { throw ValidationError("--skew-ms must be in 0...60000") }
        }
        _ = try searchBudgets()
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

    /// `--allocator-search`: one to four counts in 1...100000.
    func searchBudgets() throws -> [Int] {
        guard let allocatorSearch else { return ReplayOptions().allocatorSearch }
        let parts = allocatorSearch.split(separator: ",", omittingEmptySubsequences: false)
        let budgets = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard budgets.count == parts.count, (1...4).contains(budgets.count),
            budgets.allSatisfy({ (1...100_000).contains($0) })
        else {
            throw ValidationError(
                "--allocator-search must be one to four counts in 1...100000, comma-separated (got '\(allocatorSearch)')"
            )
        }
        return budgets
    }

    /// The engine for `source` (its scenarios parsed first: `parsed`); a recorded scenario asked for that the
    /// trace does not tell is a usage error.
    func engine(_ source: any EventSource, parsed: [Scenario], catalog: ModelCatalog) throws -> ReplayEngine {
        let scenarioThreads =
            threads.threads != nil || ProcessInfo.processInfo.environment["DMATRACE_THREADS"] != nil
            ? min(2, threads.count(default: 2)) : nil
        var options = ReplayOptions(
            skewToleranceNs: skewMs.map { UInt64($0 * 1_000_000) }, hypotheses: Set(hypotheses.hypotheses),
            scenarioThreads: scenarioThreads)
        options.allocatorSearch = try searchBudgets()
        if allocatorSearch != nil { options.allocatorSearchWork = nil }
        do {
            return try ReplayEngine.recorded(
                source, scenarios: parsed, addingRecorded: recorded, catalog: catalog, options: options)
        } catch let error as UnknownRecordedScenario {
            throw ValidationError(error.description)
        }
    }
}
