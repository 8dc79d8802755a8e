import Models
import Testing
import TraceFormat
@testable import Replay
import DMATraceTestSupport

/// `iommu:map` events ingest could give no device (a fresh intel-strict boot of 2026-12-07 had one, and the IOVA
/// allocator check, which left it out, then reported 7 divergences: its domain took the range for free). Real
/// captures of `traces/` with maps of virtio-blk made device-less: a lone one-page map, and the first and the second
/// of two ascending page-contiguous maps on one CPU (which the check takes as one allocation or two as it would with
/// their device). The check places each in the one
/// domain whose allocator predicts it (``AllocatorCheck/mapUnattributed(iova:size:cpu:time:index:event:)``).
@Suite(.tags(.realCapture)) struct DevicelessMapTests {
    /// The recorded scenario's allocator divergences after `mutate`, the outcomes it checked, how many device-less
    /// allocations the check placed in a domain (its note) and whether it left any map unchecked (its note).
    static func allocatorDivergences(_ config: String, _ mutate: (inout EventBuffer, UInt16) throws -> Void) throws
        -> (divergences: [String], checked: Int, placed: Int, unchecked: Bool)
    {
        var b = try NegativeControlTests.load(config)
        let blk = try NegativeControlTests.dev(b, "0000:00:02.0")
        try mutate(&b, blk)
        // One search (96 hypotheses per domain): a twin that diverges is not searched again with 1,000.
        let rec = try RecordedScenario.infer(metadata: b.metadata, catalog: NegativeControlTests.catalog).get()
        var options = ReplayOptions()
        options.allocatorSearch = [AllocatorCheck.defaultHypotheses]
        let result = try ReplayEngine(scenarios: [rec], recorded: rec, options: options).run(b, tracePath: "mutated")
        let s = result.scenarios[0]
        let placed =
            result.notes.first { $0.contains("whose iommu:map named no device were checked") }
            .flatMap { Int($0.prefix { $0.isNumber }) } ?? 0
        return (
            s.divergences.map(\.what).filter { $0.hasPrefix("IOVA allocator:") }, s.checked ?? 0, placed,
            result.notes.contains { $0.contains("were not checked against the IOVA allocator") }
        )
    }

    /// Indices (into `b.events`) of virtio-blk maps after the first `skip`: single-page allocations (`lone`), and
    /// the first and second maps of two-page allocations traced as two ascending page-contiguous maps on one CPU.
    static func blkMaps(_ b: EventBuffer, _ blk: UInt16, skip: Int) -> (lone: [Int], first: [Int], second: [Int]) {
        let maps = b.events.indices.filter { b.events[$0].kind == .iommuMap && b.events[$0].device == blk }
        var lone: [Int] = []
        var first: [Int] = []
        var second: [Int] = []
        for (n, i) in maps.enumerated().dropFirst(skip).dropLast() {
            let e = b.events[i]
            let next = b.events[maps[n + 1]]
            let continued =
                next.address == e.address &+ 0x1000 && next.cpu == e.cpu && next.timestamp - e.timestamp < 100_000
            let continues =
                n > 0 && b.events[maps[n - 1]].address &+ 0x1000 == e.address && b.events[maps[n - 1]].cpu == e.cpu
            if continued && !continues {
                first.append(i)
                second.append(maps[n + 1])
            } else if !continued && !continues && e.size == 0x1000 {
                lone.append(i)
            }
        }
        return (lone, first, second)
    }

    static func stripDevice(_ b: inout EventBuffer, _ i: Int) {
        b.events[i].device = Event.noDevice
        b.events[i].eventFlags.remove(.attributed)
    }

    /// The three maps picked after the first `skip` maps of virtio-blk: a lone one, a first and a second segment.
    static func picked(_ b: EventBuffer, _ blk: UInt16, skip: Int) throws -> [Int] {
        let m = blkMaps(b, blk, skip: skip)
        return try [#require(m.lone.first), #require(m.first.first), #require(m.second.dropFirst().first)]
    }

    /// Strict invalidation (one hypothesis per domain): each of the three alone, then all three, at two points of
    /// the boot; the two segments of an allocation are checked as one allocation, as in the unmutated capture.
    @Test func devicelessMapsArePlacedInTheDomainThatPredictsThem() throws {
        let base = try Self.allocatorDivergences("intel-strict") { _, _ in }
        #expect(base.divergences == [])
        for skip in [150, 300] {
            for which in 0..<3 {
                let r = try Self.allocatorDivergences("intel-strict") { b, blk in
                    Self.stripDevice(&b, try Self.picked(b, blk, skip: skip)[which])
                }
                #expect(r.divergences == [], "skip \(skip), map \(which)")
                #expect(r.checked == base.checked, "skip \(skip), map \(which)")
                // Each is placed in a domain as an allocation of its own: these contiguous maps are two allocations
                // in the unmutated capture too (the same count checked). Joining segments: AllocatorCheckTests.
                #expect(r.placed == 1 && !r.unchecked, "skip \(skip), map \(which)")
            }
            let r = try Self.allocatorDivergences("intel-strict") { b, blk in
                for i in try Self.picked(b, blk, skip: skip) { Self.stripDevice(&b, i) }
            }
            #expect(r.divergences == [], "skip \(skip)")
            #expect(r.checked == base.checked, "skip \(skip)")
            #expect(r.placed == 3 && !r.unchecked, "skip \(skip)")
            // Twin: the same maps left out of the check (dropped, as the check did before) leave their ranges free
            // in the model, and the domain's next allocations are predicted there.
            let dropped = try Self.allocatorDivergences("intel-strict") { b, blk in
                for i in try Self.picked(b, blk, skip: skip).sorted(by: >) { b.events.remove(at: i) }
            }
            #expect(dropped.divergences.count > 0, "skip \(skip)")
        }
    }

    /// Lazy invalidation (flush-queue hypotheses) and AMD's vIOMMU: the three made device-less at once.
    @Test(arguments: ["intel-lazy", "amd-viommu"])
    func devicelessMapsUnderOtherDomains(_ config: String) throws {
        let r = try Self.allocatorDivergences(config) { b, blk in
            for i in try Self.picked(b, blk, skip: 150) { Self.stripDevice(&b, i) }
        }
        #expect(r.divergences == [])
        #expect(r.placed >= 1 && !r.unchecked)
    }

    /// Their unmaps device-less too, or given to another device (virtio-net) by ingest: the placed allocation is
    /// freed all the same (the unmap follows it to the domain it was placed in), and its range handed out again as
    /// recorded.
    @Test(arguments: [false, true])
    func devicelessUnmapsFreeWhatWasPlaced(unmapToOtherDevice: Bool) throws {
        let r = try Self.allocatorDivergences("intel-strict") { b, blk in
            let net = try NegativeControlTests.dev(b, "0000:00:03.0")
            let m = Self.blkMaps(b, blk, skip: 200)
            for i in m.lone.prefix(3) {
                let iova = b.events[i].address
                Self.stripDevice(&b, i)
                let u = try #require(
                    b.events.indices.dropFirst(i).first {
                        b.events[$0].kind == .iommuUnmap && b.events[$0].device == blk && b.events[$0].address == iova
                    })
                if unmapToOtherDevice { b.events[u].device = net } else { Self.stripDevice(&b, u) }
            }
        }
        #expect(r.divergences == [])
        #expect(r.placed == 3 && !r.unchecked)
    }
}
