import Foundation
import Models
import Testing
import TraceFormat
@testable import Replay
import DMATraceTestSupport

/// Negative controls of the fidelity check (docs/replay.md, issue 13): real captures of `traces/` (tools/capture,
/// QEMU 7.2, Linux 6.1), each mutated in one way a wrong model or a wrong recording would show, must diverge,
/// and the unmutated capture must not. The suite fails if the check stops catching any of them.
@Suite(.tags(.realCapture)) struct NegativeControlTests {
    static let catalog: ModelCatalog = try! ModelCatalog.builtin()

    static func load(_ config: String) throws -> EventBuffer {
        let reader = try TraceReader(path: Repository.root.appendingPathComponent("traces/\(config).dmat").path)
        var b = EventBuffer(metadata: reader.metadata)
        try reader.forEachEvent { _, e in b.append(e) }
        return b
    }

    /// The recorded scenario's result (or that of `scenario`, taken as the recorded one).
    static func replay(_ b: EventBuffer, as scenario: String? = nil) throws -> ScenarioResult {
        let rec =
            try scenario.map { try Scenario.parse($0, catalog: catalog) }
            ?? RecordedScenario.infer(metadata: b.metadata, catalog: catalog).get()
        let r = try ReplayEngine(scenarios: [rec], recorded: rec).run(b, tracePath: "mutated")
        #expect(r.scenarios[0].isRecorded)
        return r.scenarios[0]
    }

    static func dev(_ b: EventBuffer, _ name: String) throws -> UInt16 {
        try #require(b.metadata.deviceIndex(named: name))
    }

    /// Expects at least one divergence whose text contains `fragment`; returns the divergences.
    @discardableResult
    static func expectDiverges(
        _ s: ScenarioResult, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation
    ) -> [Divergence] {
        #expect((s.divergenceCount ?? 0) > 0, "no divergence at all", sourceLocation: sourceLocation)
        #expect(
            s.divergences.contains { $0.what.contains(fragment) },
            "no divergence mentions '\(fragment)': \(s.divergences.prefix(3).map(\.what))",
            sourceLocation: sourceLocation)
        #expect(s.reproduced == false, sourceLocation: sourceLocation)
        return s.divergences
    }

    // MARK: The positive control

    @Test func unmutatedStrictCaptureHasNoDivergence() throws {
        let s = try Self.replay(try Self.load("intel-strict"))
        #expect(s.divergences == [])
        #expect(s.reproduced == true)
        #expect((s.checked ?? 0) > 3000)
    }

    @Test func nothingToCheckIsNotAPass() throws {
        for config in ["intel-pt", "swiotlb-force"] {
            let s = try Self.replay(try Self.load(config))
            #expect(s.checked == 0)
            #expect(s.reproduced == nil)
            #expect(s.fidelityLine.hasPrefix("fidelity: nothing to check"))
        }
    }

    // MARK: Mutations

    /// 1. The edu device's first DMAR fault recorded with the write reason (0x05) instead of the read reason.
    @Test func faultReasonFlipped() throws {
        var b = try Self.load("intel-strict")
        let edu = try Self.dev(b, "0000:00:05.0")
        let i = try #require(b.events.firstIndex { $0.kind == .hostFault && $0.device == edu && $0.aux == 6 })
        b.events[i].aux = 5
        Self.expectDiverges(
            try Self.replay(b), "recorded fault reason 0x5 at 0x1000000 not reproduced: predicted reason 0x6")
    }

    /// 2. A fault recorded on a live buffer: the first translation of virtio-blk turned into a fault.
    @Test func faultMovedOntoALiveBuffer() throws {
        var b = try Self.load("intel-strict")
        let blk = try Self.dev(b, "0000:00:02.0")
        let i = try #require(b.events.firstIndex { $0.kind == .hostTranslate && $0.device == blk })
        b.events[i].kind = .hostFault
        b.events[i].aux = 6
        b.events[i].address2 = 0
        Self.expectDiverges(try Self.replay(b), "not reproduced: predicted ok")
    }

    /// 3. A translation reported to another guest page.
    @Test func translationMovedToAnotherPage() throws {
        var b = try Self.load("intel-strict")
        let blk = try Self.dev(b, "0000:00:02.0")
        let i = try #require(
            b.events.indices.dropFirst(2000).first { b.events[$0].kind == .hostTranslate && b.events[$0].device == blk }
        )
        b.events[i].address2 &+= 0x10_0000
        // No recorded mapping puts that IOVA page at that GPA.
        Self.expectDiverges(
            try Self.replay(b), "-> 0x\(String(b.events[i].address2, radix: 16)) matches no mapping of the guest trace")
    }

    /// 4. The guest's first 20 iommu:map events of virtio-blk dropped: their translations match nothing and the
    /// allocator's later predictions no longer fit.
    @Test func mapsDropped() throws {
        var b = try Self.load("intel-strict")
        let blk = try Self.dev(b, "0000:00:02.0")
        var dropped = 0
        b.events.removeAll { e in
            guard e.kind == .iommuMap && e.device == blk && dropped < 20 else { return false }
            dropped += 1
            return true
        }
        let d = Self.expectDiverges(try Self.replay(b), "matches no mapping of the guest trace")
        #expect(d.contains { $0.what.hasPrefix("IOVA allocator:") })
    }

    /// 5. Under strict invalidation, a translation repeated 20 ms after its buffer's unmap (after the host
    /// recorded the page's invalidation) is a use after unmap.
    @Test func translationAfterItsUnmapUnderStrict() throws {
        var b = try Self.load("intel-strict")
        let blk = try Self.dev(b, "0000:00:02.0")
        try Self.insertLateTranslation(&b, device: blk, late: 20_000_000)
        Self.expectDiverges(try Self.replay(b), "after the buffer's unmap")
    }

    /// 6. The edu device's faults recorded as successful translations to the faulting address.
    @Test func faultsTurnedIntoTranslations() throws {
        var b = try Self.load("intel-strict")
        let edu = try Self.dev(b, "0000:00:05.0")
        for i in b.events.indices where b.events[i].kind == .hostFault && b.events[i].device == edu {
            b.events[i].kind = .hostTranslate
            b.events[i].address2 = b.events[i].address & ~0xFFF
            b.events[i].aux = 0
        }
        // The guest's two DMAR fault lines are no longer explained. (The translations themselves come after the
        // guest's last recorded mapping, outside the guest trace's coverage, and are counted in a note.)
        let s = try Self.replay(b)
        Self.expectDiverges(s, "recorded guest fault line (reason 0x6 at 0x1000000) not predicted")
        Self.expectDiverges(s, "recorded guest fault line (reason 0x5 at 0x2345000) not predicted")
    }

    /// 7. A wrong kernel model: a 4.0-era kernel cannot probe modern-only virtio with iommu_platform, yet the host
    /// translated virtio-blk's DMA.
    @Test func wrongKernelModel() throws {
        let b = try Self.load("intel-strict")
        Self.expectDiverges(
            try Self.replay(b, as: "linux-4.0-bypass+strict@qemu-viommu-virtio-translated"),
            "the scenario predicts the device never works")
    }

    /// 8. A wrong QEMU mode: virtio DMA bypassing the vIOMMU, although the host translated it.
    @Test func wrongModeModel() throws {
        let b = try Self.load("intel-strict")
        Self.expectDiverges(
            try Self.replay(b, as: "linux-6.1+strict@qemu-viommu-virtio-bypass"),
            "the scenario predicts the device's DMA bypasses the vIOMMU")
    }

    /// 9. An IOVA the allocator would not have returned: a single-page map (with its unmap) moved to another
    /// free page below 4 GiB.
    @Test func iovaMoved() throws {
        var b = try Self.load("intel-strict")
        let blk = try Self.dev(b, "0000:00:02.0")
        let i = try #require(
            b.events.indices.dropFirst(200).first {
                b.events[$0].kind == .iommuMap && b.events[$0].device == blk && b.events[$0].size == 4096
            })
        let old = b.events[i].address
        b.events[i].address = 0x8000_0000
        if let u = b.events[(i + 1)...].firstIndex(where: {
            $0.kind == .iommuUnmap && $0.device == blk && $0.address == old
        }) {
            b.events[u].address = 0x8000_0000
        }
        let d = Self.expectDiverges(try Self.replay(b), "recorded 0x80000000")
        #expect(d.contains { $0.what.hasPrefix("IOVA allocator: predicted \(Hex.prefixed(old))") })
    }

    /// 10. The CPUs of virtio-blk's unmaps swapped (the event's CPU and the `cpu` slot older files read):
    /// freed IOVAs go to the other CPU's range cache, which no longer gives the recorded IOVAs back.
    @Test func unmapCPUsSwapped() throws {
        var b = try Self.load("intel-strict")
        let blk = try Self.dev(b, "0000:00:02.0")
        for i in b.events.indices
        where b.events[i].kind == .iommuUnmap && b.events[i].device == blk && b.events[i].aux2 > 0 {
            b.events[i].aux2 = b.events[i].aux2 == 1 ? 2 : 1
            b.events[i].cpu = b.events[i].cpu.map { $0 == 0 ? 1 : 0 }
        }
        Self.expectDiverges(try Self.replay(b), "IOVA allocator: predicted")
    }

    /// 11. The guest's DMAR fault line with the other reason.
    @Test func guestFaultLineReasonFlipped() throws {
        var b = try Self.load("intel-strict")
        let i = try #require(b.events.firstIndex { $0.kind == .guestFault && $0.aux == 6 })
        b.events[i].aux = 4
        Self.expectDiverges(try Self.replay(b), "recorded guest fault line (reason 0x4 at 0x1000000) not predicted")
    }

    /// 12. A probe failure of virtio-blk in the guest log that no model predicts for this kernel.
    @Test func probeFailureInserted() throws {
        var b = try Self.load("intel-strict")
        let blk = try Self.dev(b, "0000:00:02.0")
        b.events.append(
            Event(
                kind: .virtioProbe, timestamp: b.events.last!.timestamp, device: blk,
                detail: ProbeResult.refusedFeatures.rawValue))
        Self.expectDiverges(try Self.replay(b), "recorded probe failure not predicted")
    }

    /// 13. Under lazy invalidation, a translation 60 ms after its buffer's unmap, after the flush queue's
    /// recorded flushes: no stale IOTLB entry can explain it.
    @Test func translationAfterTheFlushUnderLazy() throws {
        var b = try Self.load("intel-lazy")
        let blk = try Self.dev(b, "0000:00:02.0")
        let before = try Self.replay(b).divergenceCount ?? 0
        try Self.insertLateTranslation(&b, device: blk, late: 60_000_000)
        let s = try Self.replay(b)
        #expect((s.divergenceCount ?? 0) > before)
        #expect(
            s.divergences.contains {
                $0.what.contains("after the buffer's unmap") && $0.what.contains("the flush queue had drained")
            })
    }

    // MARK: Helpers

    /// Repeats the last translation of an IOVA page of `device` whose buffer is unmapped and not mapped again for
    /// at least `late` + 50 ms, `late` ns after the unmap, at its place in time among the host events.
    static func insertLateTranslation(_ b: inout EventBuffer, device: UInt16, late: UInt64) throws {
        let offset = b.metadata.clocks.first { $0.id == 1 }?.offsetToReferenceNs ?? 0
        func hostTime(_ e: Event) -> UInt64 {
            e.clock == 0 || e.eventFlags.contains(.aligned) ? e.timestamp : UInt64(Int64(e.timestamp) + offset)
        }
        let events = b.events
        for (u, e) in events.enumerated() where e.kind == .iommuUnmap && e.device == device && u > 300 {
            let page = e.address >> 12
            let t = hostTime(e)
            let remapped = events[(u + 1)...].contains {
                ($0.kind == .iommuMap || $0.kind == .dmaMap) && $0.address >> 12 == page
                    && hostTime($0) < t + late + 50_000_000
            }
            guard !remapped,
                let tr = events[..<u].lastIndex(where: {
                    $0.kind == .hostTranslate && $0.device == device && $0.address >> 12 == page
                })
            else { continue }
            var copy = events[tr]
            copy.timestamp = t + late
            let at = events.firstIndex { $0.clock == 0 && hostTime($0) > t + late } ?? events.count
            b.events.insert(copy, at: at)
            return
        }
        Issue.record("no unmapped page of device \(device) stays unmapped long enough")
    }
}
