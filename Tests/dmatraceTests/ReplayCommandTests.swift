import Foundation
import Testing
import DMATraceTestSupport

/// End-to-end tests of `models`, `replay` and `matrix`: they run the built `dmatrace` binary.
@Suite(.tags(.subprocess), .serialized) struct ReplayCommandTests {
    static var root: URL { Repository.root }

    static func dmatrace() throws -> String { try Subprocess.dmatraceBinary() }

    static func exec(_ args: [String]) throws -> (out: String, err: String, status: Int32) {
        let r = try Subprocess.dmatrace(args)
        return (r.stdout, r.stderr, r.status)
    }

    /// A small synthetic trace (virtio-blk/net behind intel-iommu, Linux 6.1 facts) written by `dmatrace synth`.
    static let trace: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("replay-cli-\(getpid()).dmat").path
        _ = try? exec(["synth", "-o", path, "--events", "20000", "--bug", "use-after-unmap", "--bug-every", "500"])
        return path
    }()

    @Test func modelsListShowValidate() throws {
        let list = try Self.exec(["models", "list"])
        #expect(list.status == 0)
        #expect(list.out.contains("  linux-4.8-platform: "))
        #expect(list.out.contains("  dma-api-without-bit33 [hypothesis]: "))
        #expect(list.out.contains("  qemu-viommu-virtio-translated: "))
        let withUser = try Self.exec([
            "models", "list", "--models", Self.root.appendingPathComponent("traces/models").path
        ])
        #expect(withUser.out.contains("  qemu-passthrough-flag [hypothesis]: "))
        let show = try Self.exec(["models", "show", "linux-6.1"])
        #expect(show.status == 0)
        #expect(show.out.contains(#""dmaOpsScope" : "per-device""#))
        // The version axis: ranges, defaults and where behaviour changes; ID:VERSION resolves the rules.
        #expect(
            list.out.contains(
                "      releases 5.3-5.9; default 5.4; changes at 5.3-5.3 vtd 4.7, 5.8- dmaOpsScope per-device, oops intel-unmap-bug-on-no-domain 5.3-5.7\n"
            ))
        #expect(list.out.contains("      QEMU 2.9-; default 7.2; changes at machine 9.2- awBits 48\n"))
        let at58 = try Self.exec(["models", "show", "linux-5.4:5.8"])
        #expect(
            at58.status == 0 && at58.out.contains(#""id" : "linux-5.4:5.8""#)
                && at58.out.contains(#""dmaOpsScope" : "per-device""#))
        let amd = try Self.exec(["models", "show", "qemu-amd-iommu:10.2"])
        #expect(amd.out.contains(#""silentNotPresent" : false"#) && amd.out.contains("to verify with a real boot"))
        #expect(try Self.exec(["models", "show", "qemu-ir-only:7.0"]).status == 2)
        let ok = try Self.exec([
            "models", "validate", Self.root.appendingPathComponent("traces/models/passthrough-flag.json").path
        ])
        #expect(ok.status == 0)
        #expect(ok.out.hasSuffix("valid qemu-mode model 'qemu-passthrough-flag'\n"))

        let bad = FileManager.default.temporaryDirectory.appendingPathComponent("bad-model-\(getpid()).json")
        let text = try String(
            contentsOf: Self.root.appendingPathComponent("Sources/Models/Builtin/kernel-linux-6.1.json"),
            encoding: .utf8
        )
        .replacingOccurrences(of: #""id": "linux-6.1""#, with: #""id": "mine""#)
        .replacingOccurrences(of: #""dmaAPI": "access-platform-or-xen""#, with: #""dmaAPI": "sometimes""#)
        try text.write(to: bad, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: bad) }
        let invalid = try Self.exec(["models", "validate", bad.path])
        #expect(invalid.status == 2)
        #expect(invalid.err.contains("\(bad.path): $.virtio.dmaAPI: 'sometimes' is not one of"))

        // 513 `[` ending the file made Foundation's JSONDecoder trap (fuzz regression): refused with a place.
        let deep = Self.root.appendingPathComponent("Tests/Fuzz/model/regressions/deep-nesting-513-brackets.json").path
        let nested = try Self.exec(["models", "validate", deep])
        #expect(nested.status == 2)
        #expect(nested.err.contains("\(deep): "))
        #expect(nested.err.contains("line 1, column 129: JSON nested deeper than 128 levels"))
    }

    @Test func replayIsDeterministicAndReportsProbeFailures() throws {
        let args = [
            "replay", Self.trace, "--recorded", "--scenario", "linux-4.0-bypass@qemu-viommu-virtio-translated",
            "--format", "replay-json"
        ]
        let a = try Self.exec(args), b = try Self.exec(args)
        #expect(a.status == 0)
        #expect(a.out == b.out)
        #expect(a.out.contains("virtio: device refuses features: 3"))
        #expect(a.out.contains(#""isRecorded" : true"#))
        #expect(a.out.contains(#""divergences" : ["#) || a.out.contains(#""divergences" : [\n"#))
        let text = try Self.exec(["replay", Self.trace, "--recorded"])
        #expect(text.status == 0)
        // The synthetic trace records kernel 6.12 on QEMU 9.2: the recorded scenario carries both versions.
        #expect(text.out.contains("scenario linux-6.1:6.12@qemu-viommu-virtio-translated:9.2 (recorded)"))
        #expect(text.out.contains("fidelity: 8,343 recorded outcomes checked, 0 divergences"))
        // The planted use-after-unmap faults make the recorded scenario fail: --fail-on-findings exits 1.
        #expect(try Self.exec(["replay", Self.trace, "--recorded", "--fail-on-findings"]).status == 1)
    }

    @Test func replayUsageAndInputErrors() throws {
        #expect(try Self.exec(["replay", Self.trace]).status == 64)
        let unknown = try Self.exec(["replay", Self.trace, "--scenario", "linux-9.9@qemu-noiommu"])
        #expect(unknown.status == 2)
        #expect(unknown.err.contains("unknown kernel model 'linux-9.9'"))
        #expect(try Self.exec(["replay", "/nonexistent.dmat", "--scenario", "linux-6.1@qemu-noiommu"]).status == 2)
    }

    @Test func matrixListsTheModesEveryKernelWorksIn() throws {
        let r = try Self.exec([
            "matrix", Self.trace, "--kernels", "linux-4.0-bypass,linux-6.1", "--modes",
            "qemu-noiommu,qemu-viommu-virtio-bypass,qemu-viommu-virtio-translated", "--details"
        ])
        #expect(r.status == 0)
        #expect(r.out.contains("modes in which every selected kernel works: qemu-noiommu\n"))
        #expect(
            r.out.contains(
                "unsafe: every selected kernel runs, but DMA bypasses an IOMMU the guest trusts, in: qemu-viommu-virtio-bypass\n"
            ))
        #expect(r.out.contains("    qemu-viommu-virtio-translated: 0000:00:02.0 probe-failed"))
        let j1 = try Self.exec([
            "matrix", Self.trace, "--kernels", "linux-4.0-bypass", "--modes", "qemu-noiommu", "--format", "replay-json"
        ])
        let j2 = try Self.exec([
            "matrix", Self.trace, "--kernels", "linux-4.0-bypass", "--modes", "qemu-noiommu", "--format", "replay-json"
        ])
        #expect(j1.out == j2.out)
        #expect(j1.out.contains(#""workingModes" : ["#))
    }
}

extension ReplayCommandTests {
    /// The default output leads with the answer and a grid; a legacy-only kernel is off the default axis, and
    /// sees the capture's modern-only devices only when they are created transitional (the `+transitional`
    /// variant); the twin is the same kernel under the recorded transport, where they are invisible.
    @Test func matrixAnswersFirstAndTriesDeviceTransports() throws {
        let real = CorpusTests.trace("intel-strict")
        let r = try Self.exec(["matrix", real])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.hasPrefix("answer: every kernel works, without DMA isolation for some, under: "))
        #expect(r.out.contains("unsafe alternative"))
        #expect(r.out.contains("not on the axis: linux-legacy-bypass (legacy-only virtio driver"))
        #expect(!r.out.contains("modes in which every selected kernel works"))
        #expect(r.out.split(separator: "\n").count < 60, "one screen per trace")
        let legacy = try Self.exec([
            "matrix", real, "--kernels", "linux-legacy-bypass", "--modes",
            "qemu-noiommu,qemu-noiommu+transitional", "--details"
        ])
        #expect(legacy.status == 0, "\(legacy.err)")
        #expect(legacy.out.contains("    qemu-noiommu: 0000:00:02.0 invisible, 0000:00:03.0 invisible\n"))
        #expect(legacy.out.contains("    qemu-noiommu+transitional: works\n"))
        #expect(legacy.out.contains("modes in which every selected kernel works: qemu-noiommu+transitional\n"))
        let refused = try Self.exec(["matrix", real, "--modes", "qemu-amd-iommu+transitional"])
        #expect(refused.status == 2 && refused.err.contains("QEMU refuses on a transitional device"), "\(refused.err)")
    }

    @Test func replayAndMatrixRenderReports() throws {
        let sarif = try Self.exec([
            "replay", Self.trace, "--scenario", "linux-4.0-bypass@qemu-viommu-virtio-translated", "--format", "sarif"
        ])
        #expect(sarif.status == 0)
        #expect(sarif.out.contains("\"version\""))
        let json = try Self.exec([
            "matrix", Self.trace, "--kernels", "linux-4.0-bypass,linux-6.1", "--modes",
            "qemu-noiommu,qemu-viommu-virtio-translated", "--format", "json"
        ])
        #expect(json.status == 0)
        #expect(json.out.contains("\"command\" : \"matrix\"") || json.out.contains("\"command\":\"matrix\""))
        // One JSON document per command: the replay result is --format replay-json; the old --json is gone (usage error).
        #expect(try Self.exec(["replay", Self.trace, "--recorded", "--json"]).status == 64)
    }

    /// Evidence contradicting the capture's metadata (iommu_platform=on on a device whose DMA bypassed the DMA API
    /// and the vIOMMU) is named in the notes and fails the run under --fail-on-findings.
    @Test func evidenceContradictingTheMetadataFailsOnFindings() throws {
        let root = Repository.root
        let jsonl = try Self.exec(["cat", root.appendingPathComponent("traces/intel-platform-off.dmat").path, "--jsonl"]
        )
        #expect(jsonl.status == 0)
        var lines = jsonl.out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // The metadata line: 0000:00:02.0 claimed to have iommu_platform on.
        let needle = #""iommuPlatform":false,"name":"0000:00:02.0""#
        #expect(lines[0].contains(needle))
        lines[0] = lines[0].replacingOccurrences(of: needle, with: #""iommuPlatform":true,"name":"0000:00:02.0""#)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "contradiction-\(UUID().uuidString).jsonl"
        ).path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let r = try Self.exec(["replay", path, "--recorded"])
        #expect(r.status == 0)
        #expect(r.out.contains("scenario evidence: 0000:00:02.0 iommu_platform: off - "))
        #expect(r.out.contains("CONTRADICTS the recorded facts: the metadata says iommu_platform=on"))
        #expect(try Self.exec(["replay", path, "--recorded", "--fail-on-findings"]).status == 1)
        // The twin: the unmodified trace does not fail for evidence.
        #expect(
            !(try Self.exec(["replay", root.appendingPathComponent("traces/intel-platform-off.dmat").path, "--recorded"]
            ).out.contains("CONTRADICTS")))
    }
}
