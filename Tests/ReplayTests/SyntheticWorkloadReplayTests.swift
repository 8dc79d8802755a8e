import Foundation
import Models
import Testing
import TraceFormat
import TraceIngest
@testable import Replay

/// Replays of the synthetic workload (TraceIngest.SyntheticWorkload: dma:* events with host translations,
/// Linux-like IOVA reuse, planted bugs).
@Suite struct SyntheticWorkloadReplayTests {
    static func workload(_ events: Int, bugs: [SyntheticWorkload.Bug], iommuEvents: Bool = false, host: Bool = true)
        throws
        -> (EventBuffer, SyntheticWorkload.Summary)
    {
        var b = EventBuffer()
        let summary = try SyntheticWorkload(
            options: .init(
                events: events, seed: 7, hostTranslations: host, iommuEvents: iommuEvents, bugs: bugs, bugEvery: 2_000)
        ).generate(into: &b)
        return (b, summary)
    }

    static func run(_ b: EventBuffer, _ ids: [String]) throws -> ReplayResult {
        let catalog = try ModelCatalog.builtin()
        let recorded = try RecordedScenario.infer(metadata: b.metadata, catalog: catalog).get()
        return try ReplayEngine(scenarios: try ids.map { try Scenario.parse($0, catalog: catalog) }, recorded: recorded)
            .run(b, tracePath: "synthetic")
    }

    /// One simulated scenario with a second processor: the recorded scenario's allocator check runs on a worker
    /// thread (taken back at the first `iommu:map`, when the trace has them); the whole result, the recorded
    /// scenario's fidelity and the check's findings included, equals one thread's.
    @Test(arguments: [false, true])
    func oneScenarioWithTheCheckOnAWorkerEqualsOneThread(iommuEvents: Bool) throws {
        let (b, _) = try Self.workload(60_000, bugs: SyntheticWorkload.Bug.allCases, iommuEvents: iommuEvents)
        let catalog = try ModelCatalog.builtin()
        let recorded = try RecordedScenario.infer(metadata: b.metadata, catalog: catalog).get()
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        for s in [recorded, try Scenario.parse("linux-6.1@qemu-viommu-virtio-translated", catalog: catalog)] {
            let results = try [1, 2].map {
                try ReplayEngine(scenarios: [s], recorded: recorded, options: ReplayOptions(scenarioThreads: $0))
                    .run(b, tracePath: "synthetic")
            }
            #expect(try enc.encode(results[0]) == enc.encode(results[1]), "\(s.id)")
            #expect(results[1].scenarios[0].devices.contains { $0.accesses > 0 })
        }
    }

    /// Scenarios replayed on a second thread (operations handed over in batches) give exactly the results of
    /// one thread, and of each scenario replayed alone: the planted bugs cross many batch boundaries.
    @Test func scenarioThreadsDoNotChangeResults() throws {
        let (b, summary) = try Self.workload(120_000, bugs: SyntheticWorkload.Bug.allCases, iommuEvents: true)
        #expect(summary.planted.count == 4)
        let ids = [
            "linux-6.1@qemu-viommu-virtio-translated", "linux-6.1+lazy@qemu-viommu-virtio-translated",
            "linux-4.0-bypass@qemu-viommu-virtio-bypass", "linux-4.8-platform@qemu-viommu-virtio-translated",
            "dma-api-without-bit33@qemu-viommu-virtio-bypass", "linux-restricted-memory@qemu-cc-no-viommu",
            "linux-6.1@qemu-smmuv3", "rhel7-backport@qemu-noiommu"
        ]
        let catalog = try ModelCatalog.builtin()
        let recorded = try RecordedScenario.infer(metadata: b.metadata, catalog: catalog).get()
        let scenarios = try ids.map { try Scenario.parse($0, catalog: catalog) }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        func run(_ s: [Scenario], threads: Int) throws -> ReplayResult {
            try ReplayEngine(scenarios: s, recorded: recorded, options: ReplayOptions(scenarioThreads: threads))
                .run(b, tracePath: "synthetic")
        }
        let one = try run(scenarios, threads: 1)
        let two = try run(scenarios, threads: 2)
        #expect(two.scenarios.count == 8)
        #expect(try enc.encode(one) == enc.encode(two))
        for (i, s) in scenarios.enumerated() {
            let alone = try run([s], threads: 2)
            #expect(try enc.encode(alone.scenarios[0]) == enc.encode(two.scenarios[i]), "\(s.id)")
        }
        // The planted bugs show up (not a vacuous comparison of empty results).
        #expect(two.scenarios.map(\.works).contains(false))
    }

    /// How the simulated scenarios are split between the reading thread and the worker (``ReplayEngine/localShare``):
    /// the eight scenarios of the benchmark all go to the worker, the full matrix is split so that neither thread has
    /// much more than half of the work, and a split never changes results (``scenarioThreadsDoNotChangeResults``,
    /// `RealCaptureTests.scenarioThreadsGiveTheSameMatrix`).
    @Test func scenariosAreSplitByWeight() throws {
        let (b, _) = try Self.workload(2_000, bugs: [], iommuEvents: true)
        let catalog = try ModelCatalog.builtin()
        let facts = DeviceFacts.build(from: b.metadata)
        func weights(_ ids: [String]) throws -> [Double] {
            var seen = Set<SimulationKey>()
            var out: [Double] = []
            for (i, id) in ids.enumerated() {
                let s = ScenarioState(
                    scenario: try Scenario.parse(id, catalog: catalog), isRecorded: false, facts: facts,
                    recordedSetting: nil, options: ReplayOptions(), inputs: [], viewTable: ViewTable(lanes: 1), lane: 0)
                if seen.insert(SimulationKey(s, index: i)).inserted { out.append(ReplayEngine.simulationWeight(s)) }
            }
            return out
        }
        let eight = try weights([
            "linux-6.1@qemu-viommu-virtio-translated", "linux-6.1+lazy@qemu-viommu-virtio-translated",
            "linux-4.0-bypass@qemu-viommu-virtio-bypass", "linux-4.8-platform@qemu-viommu-virtio-translated",
            "dma-api-without-bit33@qemu-viommu-virtio-bypass", "linux-restricted-memory@qemu-cc-no-viommu",
            "linux-6.1@qemu-smmuv3", "rhel7-backport@qemu-noiommu"
        ])
        #expect(ReplayEngine.localShare(eight) == 0)
        let matrix = try weights(catalog.kernelIDs.flatMap { k in catalog.modeIDs.map { "\(k)@\($0)" } })
        let local = ReplayEngine.localShare(matrix)
        #expect(local > 0 && local < matrix.count)
        let mine = ReplayEngine.readingThreadWeight + matrix.prefix(local).reduce(0, +)
        let worker = matrix.dropFirst(local).reduce(0, +)
        // Balanced within one scenario's weight (at most 3).
        #expect(abs(mine - worker) <= 3)
        // Twin: the count-based split it replaces, (n - 8) / 2, left the worker more than one scenario behind.
        let old = (matrix.count - 8) / 2
        #expect(
            matrix.dropFirst(old).reduce(0, +) - ReplayEngine.readingThreadWeight - matrix.prefix(old).reduce(0, +) > 3)
    }

    /// Use after unmap: a fault under strict invalidation (as recorded), a stale IOTLB hit under lazy flushing.
    @Test func useAfterUnmapFaultsWhenStrictAndIsStaleWhenLazy() throws {
        let (b, summary) = try Self.workload(60_000, bugs: [.useAfterUnmap])
        let planted = try #require(summary.planted[.useAfterUnmap])
        #expect(planted > 0)
        // The workload records kernel 6.12 on QEMU 9.2 (machine type 9.2: aw-bits 48): that is its recorded scenario.
        let r = try Self.run(
            b,
            [
                "linux-6.1:6.12@qemu-viommu-virtio-translated:9.2",
                "linux-6.1:6.12+lazy@qemu-viommu-virtio-translated:9.2"
            ])
        let strict = r.scenarios[0], lazy = r.scenarios[1]
        #expect(strict.isRecorded)
        #expect(strict.divergences == [])
        let faults = strict.devices.flatMap(\.groups).filter { $0.outcome == .fault }.map(\.count).reduce(0, +)
        let stale = lazy.devices.flatMap(\.groups).filter { $0.outcome == .stale }.map(\.count).reduce(0, +)
        #expect(faults == planted)
        #expect(stale == planted)
        #expect(lazy.devices.flatMap(\.groups).allSatisfy { $0.outcome != .fault })
    }

    /// With iommu:map events as well, and with stray DMA: still no divergence; stray faults stay stray.
    @Test func iommuEventsAndStrayDMAReplayWithoutDivergence() throws {
        let (b, summary) = try Self.workload(60_000, bugs: [.strayDMA], iommuEvents: true)
        let r = try Self.run(b, ["linux-6.1:6.12@qemu-viommu-virtio-translated:9.2", "linux-6.1@qemu-noiommu"])
        #expect(r.scenarios[0].divergences == [])
        let stray = r.scenarios[0].devices.flatMap(\.groups).filter { $0.stray }
        #expect(stray.map(\.count).reduce(0, +) == summary.planted[.strayDMA])
        #expect(stray.allSatisfy { $0.outcome == .fault })
        #expect(r.scenarios[0].works)
        // Without a vIOMMU nothing stops the stray DMA: it reaches guest memory.
        let unprotected = r.scenarios[1].devices.flatMap(\.groups).filter { $0.stray }
        #expect(unprotected.allSatisfy { $0.outcome == .misdirected && $0.key == "stray" })
    }

    /// A guest-only capture (no host trace): the device is taken to touch every buffer in its direction.
    @Test func impliedAccessesWithoutHostTrace() throws {
        let (b, _) = try Self.workload(20_000, bugs: [], host: false)
        let r = try Self.run(
            b, ["linux-6.1@qemu-viommu-virtio-translated", "dma-api-without-bit33@qemu-viommu-virtio-bypass"])
        let total = r.scenarios[0].devices.map(\.accesses).reduce(0, +)
        #expect(total > 0)
        #expect(r.scenarios[0].devices.allSatisfy { $0.verdict == .ok })
        #expect(r.scenarios[1].devices.allSatisfy { $0.verdict == .misdirected })
        #expect(r.scenarios[1].devices.map(\.accesses).reduce(0, +) == 0)  // no ring, no transfer
    }
}

/// A device's accesses are summed from its groups (``ScenarioState/accesses``): only outcomes recorded for an
/// access count, not device-level ones (a failed mapping, an oops) in the same or another group. Twin: the
/// groups' counts include those outcomes, so a sum over every count would be caught.
@Test func accessesCountOnlyAccessOutcomes() throws {
    let (b, _) = try SyntheticWorkloadReplayTests.workload(200, bugs: [], iommuEvents: false)
    var s = ScenarioState(
        scenario: try Scenario.parse("linux-6.1@qemu-viommu-virtio-translated", catalog: try ModelCatalog.builtin()),
        isRecorded: false, facts: DeviceFacts.build(from: b.metadata), recordedSetting: nil, options: ReplayOptions(),
        inputs: [], viewTable: ViewTable(lanes: 1), lane: 0)
    let at = OccurrenceArgs(
        index: 0, event: nil, time: 0, deviceAddress: 0, buffer: nil, size: 4096, write: false, reason: nil)
    for _ in 0..<3 {
        s.record(.ok, device: 0, reason: nil, write: false, stray: false, tag: .none, size: 4096, access: true, at: at)
    }
    s.record(.mappingFailed, device: 0, reason: nil, write: false, stray: false, tag: .iovaExhausted, size: 1, at: at)
    s.record(.ok, device: 0, reason: nil, write: false, stray: false, tag: .none, size: 1, at: at)
    s.record(.fault, device: 1, reason: 5, write: true, stray: false, tag: .none, size: 1, access: true, at: at)
    #expect(s.accesses.prefix(2) == [3, 1])
    #expect(s.groups[0].map(\.count).reduce(0, +) == 5)
}
