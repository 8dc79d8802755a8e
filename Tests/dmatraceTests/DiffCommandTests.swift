import DMATraceTestSupport
import Foundation
import Testing
#if canImport(Glibc)
    import Glibc
#endif

/// Runs the built `dmatrace` binary with `args`; returns the exit status and standard output.
private func dmatrace(_ args: [String]) throws -> (status: Int32, stdout: String) {
    let r = try Subprocess.dmatrace(args)
    return (r.status, r.stdout)
}

private var golden: String { Repository.file("Tests/ReportsTests/Golden") }

@Test(.tags(.subprocess)) func diffReportsThePlantedRegressionAndFailsOnNew() throws {
    let base = golden + "/diff-base.json", new = golden + "/diff-planted.json"
    let r = try dmatrace(["diff", base, new, "--fail-on", "new"])
    #expect(r.status == 1)
    #expect(r.stdout.contains(": 1 new, 0 fixed, 0 changed, 2 unchanged\n"))
    #expect(
        r.stdout.contains("error [new] replay/misdirected intel-viommu-strict linux-6.1@vtd-notrans 0000:00:03.0 ×2"))
    // Only regressions fail: a fix does not, nor does a diff without --fail-on.
    #expect(try dmatrace(["diff", new, base, "--fail-on", "new"]).status == 0)
    #expect(try dmatrace(["diff", base, new]).status == 0)
    #expect(try dmatrace(["diff", base, new, "--fail-on", "changed"]).status == 0)
    #expect(try dmatrace(["diff", base, new, "--fail-on", "any"]).status == 1)
    // Every format renders; JSON carries the one new fingerprint.
    let json = try dmatrace(["diff", base, new, "--format", "json"])
    #expect(json.status == 0)
    #expect(json.stdout.contains("\"newCount\" : 1"))
    // Input and usage errors keep their own codes.
    #expect(try dmatrace(["diff", base, "/nonexistent.json"]).status == 2)
    #expect(try dmatrace(["diff", base, new, "--fail-on", "sometimes"]).status == 64)
}

private var fixtures: String { Repository.file("Tests/Fixtures") }

@Test(.tags(.subprocess)) func analyzeReportsTheRuleOfAJSONLScenario() throws {
    let trace = fixtures + "/dma-debug/free-direction-mismatch.jsonl"
    let text = try dmatrace(["analyze", trace])
    #expect(text.status == 0)
    #expect(text.stdout.contains("  [FAIL] #7 free-direction-mismatch: 1\n"))
    // The recorded scenario (kernel 6.15 → linux-6.1 model at 6.15, no vIOMMU) has nothing to check here (no
    // translation, fault or IOVA): that is said, not counted as a pass.
    #expect(
        text.stdout.contains(
            "replay fidelity of free-direction-mismatch: not checked: nothing to check: the trace records no translation, fault, guest fault line, probe failure or IOVA allocation of a translated device\n"
        ))
    #expect(
        text.stdout.contains(
            "  guest| DMA-API: virtio-pci 0000:00:04.0: device driver frees DMA memory with different direction [device address=0x00000000fffff000] [size=1500 bytes] [mapped with DMA_FROM_DEVICE] [unmapped with DMA_TO_DEVICE]\n"
        ))
    // The finding points at the JSONL line of the unmap.
    #expect(text.stdout.contains("  first: \(trace):3 (event #1, t=2000 ns)"))
    #expect(
        try dmatrace(["analyze", trace, "--no-fidelity"]).stdout.contains(
            "replay fidelity of free-direction-mismatch: not checked: skipped (--no-fidelity)\n"))
    #expect(try dmatrace(["analyze", trace, "--fail-on", "error"]).status == 1)
    #expect(
        try dmatrace([
            "analyze", fixtures + "/dma-debug/free-not-allocated.jsonl", "--fail-on", "error", "--era", "6.19"
        ]).status == 1)
    #expect(try dmatrace(["analyze", "/nonexistent.dmat"]).status == 2)
    #expect(try dmatrace(["analyze", trace, "--era", "2.6"]).status == 64)
    let sarif = try dmatrace(["analyze", trace, "--format", "sarif"])
    #expect(sarif.stdout.contains("\"startLine\" : 3"))
}

@Test(.tags(.subprocess)) func exportWritesATraceEventTimeline() throws {
    let trace = fixtures + "/dma-debug/leak-at-end.jsonl"
    let r = try dmatrace(["export", "--perfetto", trace])
    #expect(r.status == 0)
    #expect(r.stdout.hasPrefix("{\"displayTimeUnit\":\"ns\""))
    #expect(
        r.stdout.contains(
            "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":1,\"args\":{\"name\":\"0000:00:04.0\"}}"))
    // The unmapped mapping is a slice; the two leaked ones run to the end; the leak finding is marked.
    // Async slices (one id per mapping), timestamps from the first event (1000 ns).
    #expect(
        r.stdout.contains(
            "\"name\":\"dma_map 0x00000000ffffd000+64\",\"cat\":\"mapping\",\"ph\":\"b\",\"id\":3,\"pid\":1,\"tid\":1,\"ts\":0.200"
        ))
    #expect(
        r.stdout.contains(
            "\"name\":\"dma_map 0x00000000ffffd000+64\",\"cat\":\"mapping\",\"ph\":\"e\",\"id\":3,\"pid\":1,\"tid\":1,\"ts\":1.000"
        ))
    #expect(r.stdout.contains("\"closed\":\"still mapped when the recording (or the export window) ended\""))
    #expect(r.stdout.contains("\"name\":\"finding: dma-api-debug/leak-at-end recorded\""))
}

/// A pasted log with swiotlb exhaustion: ingest keeps the event, analyze reports it with device and size
/// (and fails on it when asked); a log without one reports none.
@Test(.tags(.subprocess)) func analyzeReportsSwiotlbFullFromAPastedLog() throws {
    let dir = try CLI.temporaryDirectory("swiotlb")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let out = dir + "/mt76.dmat"
    #expect(
        try dmatrace(["ingest", fixtures + "/real-world/swiotlb/mt76-500-linux5.4-amid-oops.txt", "-o", out, "--quiet"])
            .status == 0)
    let json = try dmatrace(["analyze", out, "--format", "json"])
    #expect(json.stdout.contains("\"category\" : \"swiotlb-full\""))
    #expect(json.stdout.contains("\"device\" : \"0000:01:00.0\""))
    #expect(
        json.stdout.contains(
            "a DMA mapping of 3776 bytes failed, 31415 of 32768 slots in use (2 times, largest 3776 bytes)"))
    #expect(try dmatrace(["analyze", out, "--fail-on", "error"]).status == 1)
    let other = dir + "/dmar.dmat"
    #expect(
        try dmatrace(["ingest", fixtures + "/real-world/intel/dasharo-641-linux6x-no-pasid.txt", "-o", other, "--quiet"]
        ).status == 0)
    #expect(!(try dmatrace(["analyze", other, "--format", "json"]).stdout.contains("swiotlb-full")))
}

/// The diff's text leads with the answer on both sides and lists only what changed; `--all` lists everything.
/// The twin: a diff of a report with itself says the answer is unchanged and lists no finding.
@Test(.tags(.subprocess)) func diffTextLeadsWithTheAnswerAndShowsOnlyChanges() throws {
    let dir = NSTemporaryDirectory() + "dmatrace-diff-answer-\(getpid())"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let trace = CorpusTests.trace("intel-strict")
    let kernels = ["--kernels", "linux-4.0-bypass,linux-6.1"]
    _ = try dmatrace(
        ["matrix", trace] + kernels + [
            "--modes", "qemu-noiommu,qemu-viommu-virtio-translated+modern", "--format", "json", "-o", dir + "/base.json"
        ])
    // The new run also tries qemu-viommu-bus-bypass: it works for both kernels too.
    _ = try dmatrace(
        ["matrix", trace] + kernels + [
            "--modes", "qemu-noiommu,qemu-viommu-virtio-translated+modern,qemu-viommu-bus-bypass", "--format", "json",
            "-o", dir + "/new.json"
        ])
    let d = try dmatrace(["diff", dir + "/base.json", dir + "/new.json"])
    #expect(d.status == 0)
    #expect(
        d.stdout.contains(
            "answer changed: modes that work for every kernel: {qemu-noiommu} → {qemu-noiommu, qemu-viommu-bus-bypass}\n"
        ), "\(d.stdout)")
    #expect(
        d.stdout.contains("finding(s) new, fixed or changed") || d.stdout.contains("findings new, fixed or changed"))
    #expect(!d.stdout.contains("[unchanged]"))
    let all = try dmatrace(["diff", dir + "/base.json", dir + "/new.json", "--all"])
    #expect(all.stdout.contains("[unchanged]") && all.stdout.contains("\ntrace intel-strict\n"))
    let same = try dmatrace(["diff", dir + "/base.json", dir + "/base.json"])
    #expect(same.stdout.contains("answer: modes that work for every kernel: {qemu-noiommu} (unchanged)\n"))
    #expect(same.stdout.contains("\n0 findings new, fixed or changed"))
}
