import Models
import Testing
import TraceFormat
import TraceIngest
@testable import Replay

/// Replays of the synthetic workload (TraceIngest.SyntheticWorkload: dma:* events with host translations,
/// Linux-like IOVA reuse, planted bugs).
@Suite struct SyntheticWorkloadReplayTests {
    static func workload(_ events: Int, bugs: [SyntheticWorkload.Bug], iommuEvents: Bool = false, host: Bool = true) throws
        -> (EventBuffer, SyntheticWorkload.Summary) {
        var b = EventBuffer()
        let summary = try SyntheticWorkload(options: .init(
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

    /// Use after unmap: a fault under strict invalidation (as recorded), a stale IOTLB hit under lazy flushing.
    @Test func useAfterUnmapFaultsWhenStrictAndIsStaleWhenLazy() throws {
        let (b, summary) = try Self.workload(60_000, bugs: [.useAfterUnmap])
        let planted = try #require(summary.planted[.useAfterUnmap])
        #expect(planted > 0)
        let r = try Self.run(b, ["linux-6.1@qemu-viommu-virtio-translated", "linux-6.1+lazy@qemu-viommu-virtio-translated"])
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
        let r = try Self.run(b, ["linux-6.1@qemu-viommu-virtio-translated", "linux-6.1@qemu-noiommu"])
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
        let r = try Self.run(b, ["linux-6.1@qemu-viommu-virtio-translated", "dma-api-without-bit33@qemu-viommu-virtio-bypass"])
        let total = r.scenarios[0].devices.map(\.accesses).reduce(0, +)
        #expect(total > 0)
        #expect(r.scenarios[0].devices.allSatisfy { $0.verdict == .ok })
        #expect(r.scenarios[1].devices.allSatisfy { $0.verdict == .misdirected })
        #expect(r.scenarios[1].devices.map(\.accesses).reduce(0, +) == total)
    }
}
