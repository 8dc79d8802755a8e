import Testing
import Replay
@testable import Analysis

private func occ(_ index: Int, _ addr: UInt64, size: UInt64 = 4096, line: UInt64) -> Occurrence {
    Occurrence(
        eventIndex: index, timestamp: UInt64(index) * 100, sourceFile: "guest-trace-cmd-v6-report.txt",
        sourcePosition: line, deviceAddress: addr, bufferAddress: 0x4290000, size: size, write: false,
        reason: 6)
}

private func result(path: String, faultCount: Int = 3) -> ReplayResult {
    let fault = OutcomeGroup(
        outcome: .fault, key: "reason=0x06,read", count: faultCount, first: occ(5, 0xfff57000, line: 7),
        worst: occ(9, 0xfff40000, size: 40960, line: 11), explanation: "no mapping for the IOVA",
        rule: "qemu-7.2/vtd_do_iommu_translate",
        guestLog: [
            "DMAR: [DMA Read NO_PASID] Request device [00:03.0] fault addr 0xfff57000 [fault reason 0x06] PTE Read access is not set"
        ],
        hostLog: ["vtd_dmar_fault sid 0x18 fault 6 addr 0xfff57000 write 0"])
    let bad = DeviceResult(device: "0000:00:03.0", verdict: .fault, groups: [fault], accesses: 10)
    let good = DeviceResult(device: "0000:00:03.0", verdict: .ok, groups: [], accesses: 10)
    return ReplayResult(
        trace: path, events: 100,
        scenarios: [
            ScenarioResult(kernel: "linux-6.1", mode: "vtd-strict", isRecorded: true, devices: [good], divergences: []),
            ScenarioResult(kernel: "linux-4.4", mode: "vtd-strict", isRecorded: false, devices: [bad], divergences: []),
            ScenarioResult(kernel: "linux-6.1", mode: "vtd-off", isRecorded: false, devices: [good], divergences: []),
            ScenarioResult(kernel: "linux-4.4", mode: "vtd-off", isRecorded: false, devices: [good], divergences: [])
        ])
}

@Test func findingsFromReplayAreStableAcrossReingestion() throws {
    let a = Findings.from(result(path: "/tmp/run1/intel-viommu-strict.dmat"))
    let b = Findings.from(result(path: "out/intel-viommu-strict.jsonl", faultCount: 7))
    #expect(a.count == 1)
    let f = try #require(a.first)
    #expect(f.trace == "intel-viommu-strict")
    #expect(f.scenario == "linux-4.4@vtd-strict")
    #expect(f.category == "fault")
    #expect(f.severity == .error)
    #expect(f.count == 3)
    #expect(f.first?.sourcePosition == 7)
    #expect(f.worst?.size == 40960)
    #expect(f.message == "0000:00:03.0 under linux-4.4@vtd-strict: fault (reason=0x06,read), 3 times")
    #expect(f.fingerprint.count == 16)
    #expect(b.map(\.fingerprint) == a.map(\.fingerprint))
    #expect(
        Fingerprint.of(trace: "t", scenario: "s", device: "d", category: "c", key: "k", rule: "r")
            != Fingerprint.of(trace: "t", scenario: "s", device: "d", category: "c", key: "kr", rule: ""))
}

@Test func matrixAnswersWhichModesWorkForEveryKernel() {
    let r = result(path: "intel-viommu-strict.dmat")
    let m = CompatibilityMatrix(results: [r], findings: Findings.from(r))
    #expect(m.kernels == ["linux-6.1", "linux-4.4"])
    #expect(m.modes == ["vtd-strict", "vtd-off"])
    #expect(m.modesWorkingForAllKernels == ["vtd-off"])
    #expect(m.cells.count == 4)
    #expect(m.verdict(trace: "intel-viommu-strict", kernel: "linux-4.4", mode: "vtd-strict") == "fault")
    #expect(m.verdict(trace: "intel-viommu-strict", kernel: "linux-5.4", mode: "vtd-strict") == nil)
    let cell = m.cells.first { $0.kernel == "linux-4.4" && $0.mode == "vtd-strict" }
    #expect(cell?.findings == Findings.from(r).map(\.fingerprint))
}

/// Trace names keep the dots of a versioned capture name (traces/linux6.12-intel-strict.dmat) and drop only
/// known extensions; the twin: names that differ only after a version dot stay different.
@Test func traceNamesDropOnlyKnownExtensions() {
    #expect(Fingerprint.traceName("out/run1/virtio.dmat") == "virtio")
    #expect(Fingerprint.traceName("virtio.jsonl") == "virtio")
    #expect(Fingerprint.traceName("/x/virtio.dmat.zst") == "virtio")
    #expect(Fingerprint.traceName("traces/linux6.12-intel-strict.dmat") == "linux6.12-intel-strict")
    #expect(Fingerprint.traceName("qemu10.0-amd-viommu.jsonl.gz") == "qemu10.0-amd-viommu")
    #expect(Fingerprint.traceName(".dmat") == ".dmat")
    #expect(Fingerprint.traceName("linux6.12-intel-strict.dmat") != Fingerprint.traceName("linux6.12-amd-viommu.dmat"))
    #expect(
        Fingerprint.of(
            trace: Fingerprint.traceName("linux6.12-a.dmat"), scenario: "s", device: "d", category: "c", key: "k",
            rule: "r")
            != Fingerprint.of(
                trace: Fingerprint.traceName("linux6.12-b.dmat"), scenario: "s", device: "d", category: "c", key: "k",
                rule: "r"))
}

@Test func divergencesGroupByShapeSoFingerprintsAreStable() {
    func div(_ what: String, _ i: Int) -> Divergence {
        Divergence(what: what, device: "0000:00:02.0", at: occ(i, 0x1000 * UInt64(i), line: UInt64(i)))
    }
    #expect(
        Findings.shape("recorded translation 0xffe09000 -> 0x328e1000 matches no mapping, 12 times")
            == "recorded translation 0x# -> 0x# matches no mapping, # times")
    let a = ReplayResult(
        trace: "t.dmat", events: 10,
        scenarios: [
            ScenarioResult(
                kernel: "linux-6.1", mode: "m", isRecorded: true, devices: [],
                divergences: [
                    div("recorded translation 0xffe09000 -> 0x328e1000 matches no mapping of the guest trace", 3),
                    div("recorded translation 0xffe0a000 -> 0x805c000 matches no mapping of the guest trace", 5),
                    div("recorded fault 0x06 at 0x1000 not predicted", 7)
                ])
        ])
    let f = Findings.from(a)
    #expect(f.map(\.count) == [1, 2])
    #expect(
        f.map(\.key) == [
            "recorded fault 0x# at 0x# not predicted",
            "recorded translation 0x# -> 0x# matches no mapping of the guest trace"
        ])
    #expect(
        f[1].message
            == "replay of the recorded scenario linux-6.1@m diverges: recorded translation 0xffe09000 -> 0x328e1000 matches no mapping of the guest trace (and 1 more like it)"
    )
    #expect(f[1].first?.eventIndex == 3)
}
