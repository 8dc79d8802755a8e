import Foundation
import Testing
import DMATraceTestSupport

/// The bundled real corpus (traces/<config>.dmat, made by tools/build-corpus from traces/raw): each capture
/// replays under its own recorded scenario with the measured divergences (zero, intel-lazy's IOVA allocations
/// included since the flush-queue timer hypotheses are ranked), and the tables `dmatrace validate` measures are the ones in traces/README.md.
@Suite(.tags(.subprocess, .realCapture, .slow), .serialized) struct CorpusTests {
    static let configs = ["intel-strict", "intel-lazy", "intel-pt", "intel-platform-off", "amd-viommu", "swiotlb-force"]
    static var root: URL { ReplayCommandTests.root }
    static func trace(_ c: String) -> String { root.appendingPathComponent("traces/\(c).dmat").path }

    /// Runs `executable args…` from the repository root; returns stdout, stderr and the exit status.
    static func run(_ executable: String, _ args: [String]) throws -> (out: String, err: String, status: Int32) {
        let r = try Subprocess.run(executable, args, currentDirectory: root.path)
        return (r.stdout, r.stderr, r.status)
    }

    struct Recorded: Decodable {
        struct Scenario: Decodable {
            var isRecorded: Bool
            var kernel: String
            var mode: String
            var divergences: [Divergence]
            var checked: Int?
        }
        struct Divergence: Decodable { var what: String }
        var scenarios: [Scenario]
    }

    @Test(
        "each capture's recorded scenario comes from its metadata and replays with the measured divergences",
        arguments: zip(
            configs,
            [
                ("qemu-viommu-virtio-translated", 0, 3918), ("qemu-viommu-virtio-translated", 0, 3405),
                ("qemu-viommu-virtio-translated", 0, 0), ("qemu-viommu-virtio-bypass", 0, 130),
                ("qemu-amd-iommu", 0, 3516),
                ("qemu-cc-no-viommu", 0, 0)
            ]))
    func recordedReplay(config: String, expected: (mode: String, divergences: Int, checked: Int)) throws {
        let r = try ReplayCommandTests.exec(["replay", Self.trace(config), "--recorded", "--format", "replay-json"])
        #expect(r.status == 0, "\(r.err)")
        let result = try JSONDecoder().decode(Recorded.self, from: Data(r.out.utf8))
        let rec = try #require(result.scenarios.first { $0.isRecorded })
        #expect(rec.kernel == "linux-6.1")
        #expect(rec.mode == expected.mode)
        #expect(rec.divergences.count == expected.divergences)
        // Were any left, they would be IOVA allocations the flush-queue timer hypotheses do not explain.
        #expect(rec.divergences.allSatisfy { $0.what.hasPrefix("IOVA allocator:") })
        // intel-pt and swiotlb-force: nothing to check, and the text says so.
        #expect((rec.checked ?? 0) == expected.checked)
        if expected.checked == 0 {
            let text = try ReplayCommandTests.exec(["replay", Self.trace(config), "--recorded"])
            #expect(text.out.contains("fidelity: nothing to check"))
        }
    }

    /// linux5.10-intel-default: the allocator check's first search (96 hypotheses per domain) prunes the flush-queue
    /// timer histories that explain 67 allocations; the replay searches again with 1,000 and reports that run, with
    /// a note. Twin: with the first search alone (`--allocator-search 96`) the 67 divergences stay; and a budget
    /// that is not a count is refused.
    @Test func aDivergingCheckSearchesAgainWithAWiderBeam() throws {
        func replay(_ extra: [String]) throws -> (divergences: Int, notes: [String]) {
            let r = try ReplayCommandTests.exec(
                ["replay", Self.trace("linux5.10-intel-default"), "--recorded", "--format", "replay-json"] + extra)
            #expect(r.status == 0, "\(r.err)")
            struct Out: Decodable {
                var scenarios: [Recorded.Scenario]
                var notes: [String]
            }
            let out = try JSONDecoder().decode(Out.self, from: Data(r.out.utf8))
            return (try #require(out.scenarios.first { $0.isRecorded }).divergences.count, out.notes)
        }
        let wide = try replay([])
        #expect(wide.divergences == 0)
        #expect(wide.notes.contains { $0.contains("searched again") && $0.contains("67 with 96, 0 with 1000") })
        let narrow = try replay(["--allocator-search", "96"])
        #expect(narrow.divergences == 67)
        #expect(!narrow.notes.contains { $0.contains("searched again") })
        let bad = try ReplayCommandTests.exec(
            ["replay", Self.trace("linux5.10-intel-default"), "--recorded", "--allocator-search", "96,many"])
        #expect(bad.status == 64)
        #expect(bad.err.contains("--allocator-search must be one to four counts"))
    }

    struct Replayed: Decodable {
        struct Scenario: Decodable { var devices: [Device] }
        struct Device: Decodable { var device: String; var groups: [Group] }
        struct Group: Decodable {
            struct First: Decodable { var deviceAddress: UInt64; var reason: UInt32? }
            var outcome: String
            var count: Int
            var first: First?
            var guestLog: [String]
            var hostLog: [String]
            var stray: Bool
        }
        var scenarios: [Scenario]
    }

    /// QEMU 7.2's amd-iommu drops a DMA to an IOVA without a PTE silently (mode model faults.silentNotPresent);
    /// the same accesses under intel-iommu are faults the guest logs.
    @Test func amdDropsStrayDMASilentlyIntelLogsIt() throws {
        func edu(_ scenario: String) throws -> Replayed.Device {
            let r = try ReplayCommandTests.exec([
                "replay", Self.trace("amd-viommu"), "--scenario", scenario, "--format", "replay-json"
            ])
            #expect(r.status == 0, "\(r.err)")
            let result = try JSONDecoder().decode(Replayed.self, from: Data(r.out.utf8))
            return try #require(result.scenarios.first?.devices.first { $0.device == "0000:00:05.0" })
        }
        let amd = try edu("linux-6.1+strict@qemu-amd-iommu")
        #expect(amd.groups.map(\.outcome) == ["fault"])
        #expect(amd.groups[0].count == 128 && amd.groups[0].stray && amd.groups[0].first?.reason == 2)
        #expect(amd.groups[0].guestLog.isEmpty && amd.groups[0].hostLog.isEmpty)
        let intel = try edu("linux-6.1+strict@qemu-viommu-virtio-translated")
        #expect(intel.groups.map(\.outcome) == ["fault"])
        #expect(
            intel.groups[0].count == 128 && intel.groups[0].first?.reason == 6
                && intel.groups[0].first?.deviceAddress == 0x100_0000)
        #expect(intel.groups[0].guestLog.contains { $0.contains("[fault reason 0x06] PTE Read access is not set") })
        let pt = try edu("linux-6.1+pt@qemu-viommu-virtio-translated")
        #expect(pt.groups.map(\.outcome) == ["misdirected"])
    }

    struct Analyzed: Decodable {
        struct Finding: Decodable {
            var key: String; var device: String?; var severity: String; var count: Int; var message: String
        }
        var findings: [Finding]
    }

    /// The edu device's DMA-API findings of `analyze` on a trace (the planted violations of capture.d/dmabug).
    static func eduFindings(_ trace: String) throws -> [Analyzed.Finding] {
        let r = try ReplayCommandTests.exec(["analyze", trace, "--format", "json", "--no-fidelity"])
        #expect(r.status == 0, "\(r.err)")
        return try JSONDecoder().decode(Analyzed.self, from: Data(r.out.utf8)).findings
            .filter { $0.device == "0000:00:05.0" }.sorted { $0.key < $1.key }
    }

    /// traces/linux6.12-dma-api-violation.dmat: a real Linux 6.12 guest whose module (tools/capture.d/dmabug)
    /// maps buffers for QEMU's edu device through the DMA API, has the device really read and write them, and
    /// breaks three rules on purpose. `analyze` finds exactly those three on the edu device, in the kernel's words.
    @Test func realCaptureWithPlantedDMAAPIViolations() throws {
        let f = try Self.eduFindings(Self.trace("linux6.12-dma-api-violation"))
        #expect(f.map(\.key) == ["free-direction-mismatch", "free-size-mismatch", "leak-at-end"])
        #expect(f.map(\.severity) == ["error", "error", "note"])
        #expect(f.allSatisfy { $0.count == 1 })
        #expect(f[0].message.contains("[mapped with DMA_FROM_DEVICE] [unmapped with DMA_TO_DEVICE]"))
        #expect(f[1].message.contains("[map size=4096 bytes] [unmap size=2048 bytes]"))
        // the recorded host side: the edu really read/wrote the mapped IOVAs through the vIOMMU
        let r = try ReplayCommandTests.exec([
            "cat", Self.trace("linux6.12-dma-api-violation"), "--device", "0000:00:05.0",
            "--kind", "host_translate"
        ])
        #expect(r.status == 0)
        #expect(r.out.contains("0xffff000"), "no host translation of the dmabug IOVA")
    }

    /// Twin: the same real trace with the two bad unmaps corrected (size 4096, direction FROM_DEVICE) leaves
    /// only the mapping still live when the recording stopped.
    @Test func realCaptureWithTheViolationsCorrectedHasOnlyTheLiveMapping() throws {
        let cat = try ReplayCommandTests.exec(["cat", Self.trace("linux6.12-dma-api-violation"), "--jsonl"])
        #expect(cat.status == 0)
        var fixed = 0
        let lines = cat.out.split(separator: "\n").map { line -> String in
            var l = String(line)
            guard l.contains("\"kind\":\"dma_unmap\""), l.contains("\"device\":\"0000:00:05.0\"") else { return l }
            if l.contains("\"size\":2048") {
                l = l.replacingOccurrences(of: "\"size\":2048", with: "\"size\":4096"); fixed += 1
            } else if l.contains("\"dir\":\"TO_DEVICE\"") {
                l = l.replacingOccurrences(of: "\"dir\":\"TO_DEVICE\"", with: "\"dir\":\"FROM_DEVICE\""); fixed += 1
            }
            return l
        }
        #expect(fixed == 2)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dmatrace-dmabug-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let jsonl = dir.appendingPathComponent("corrected.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: jsonl, atomically: true, encoding: .utf8)
        let f = try Self.eduFindings(jsonl.path)
        #expect(f.map(\.key) == ["leak-at-end"])
    }

    /// `ingest --capture-dir` reproduces the bundled traces byte for byte from their capture directories (the
    /// config.json facts, the written-down force-merge reason, the edu side input); the twin: without the
    /// directory's facts the same inputs give another trace.
    @Test(
        "ingest --capture-dir reproduces the bundled traces",
        arguments: ["intel-strict", "intel-pt", "linux5.10-intel-strict"])
    func captureDirReingest(config: String) throws {
        // A scratch directory laid out like the repository (traces/raw a link to the real one), so the paths the
        // trace records (inputs, the side input next to the output) are the bundled trace's.
        let dir = try Repository.temporaryDirectory("capdir")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/traces", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: dir + "/traces/raw", withDestinationPath: Self.root.appendingPathComponent("traces/raw").path)
        func run(_ args: [String]) throws -> ProcessOutput {
            try Subprocess.run(try ReplayCommandTests.dmatrace(), args, currentDirectory: dir)
        }
        let r = try run(["ingest", "--capture-dir", "traces/raw/\(config)", "-o", "traces/\(config).dmat", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        let made = try Data(contentsOf: URL(fileURLWithPath: dir + "/traces/\(config).dmat"))
        #expect(made == (try Data(contentsOf: URL(fileURLWithPath: Self.trace(config)))))
        let side = "traces/\(config).guest-edu-dma.jsonl"
        let bundledSide = Self.root.appendingPathComponent(side).path
        #expect(
            FileManager.default.fileExists(atPath: dir + "/" + side)
                == FileManager.default.fileExists(atPath: bundledSide))
        if FileManager.default.fileExists(atPath: bundledSide) {
            #expect(
                try Data(contentsOf: URL(fileURLWithPath: dir + "/" + side))
                    == Data(contentsOf: URL(fileURLWithPath: bundledSide)))
        }
        // The twin: the same inputs without the directory's facts give another trace.
        let inputs = ["guest-ftrace.txt", "guest-dmesg.txt", "qemu-trace.log"].map { name in
            let p = "traces/raw/\(config)/\(name)"
            return FileManager.default.fileExists(atPath: Self.root.appendingPathComponent(p + ".zst").path)
                ? p + ".zst" : p
        }
        let p = try run(["ingest"] + inputs + ["-o", "plain.dmat", "-q", "--force-merge"])
        #expect(p.status == 0, "\(p.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/plain.dmat")) != made)
    }

    /// `--under` needs captures to replay: without them nothing would be compared and the table would be empty
    /// (exit 64); one capture under another's scenario is one pair.
    @Test func validateUnderNeedsTracesToReplay() throws {
        let alone = try Self.run(
            try ReplayCommandTests.dmatrace(),
            ["validate", "--under", "traces/intel-strict.dmat", "traces/intel-lazy.dmat"])
        #expect(alone.status == 64, "\(alone.err)")
        let pair = try Self.run(
            try ReplayCommandTests.dmatrace(),
            ["validate", "traces/intel-lazy.dmat", "--under", "traces/intel-strict.dmat"])
        #expect(pair.status == 0, "\(pair.err)")
        #expect(pair.out.contains("| intel-lazy → intel-strict | `linux-6.1+strict@qemu-viommu-virtio-translated` |"))
        #expect(!pair.out.contains("| intel-strict → intel-lazy |"))
    }

    @Test("dmatrace validate measures the tables that are in traces/README.md")
    func validationTables() throws {
        let traces = try FileManager.default.contentsOfDirectory(
            atPath: Self.root.appendingPathComponent("traces").path
        )
        .filter { $0.hasSuffix(".dmat") && !$0.hasPrefix("linux") && !$0.hasPrefix("qemu") }.sorted().map {
            "traces/" + $0
        }
        let r = try Self.run(try ReplayCommandTests.dmatrace(), ["validate"] + traces + ["--check", "traces/README.md"])
        #expect(r.status == 0, "\(r.err)")
        #expect(
            r.out.contains(
                "| intel-strict → intel-strict | `linux-6.1+strict@qemu-viommu-virtio-translated` | 999/999 ±0 (999) | 746/746 ±0 (746) | 2792/2792 ±0 (2792) |"
            ))
        // The twin: a file without the tables fails the check with exit 1.
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("empty-\(UUID().uuidString).md")
        try "no tables here\n".write(to: empty, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: empty) }
        let bad = try Self.run(try ReplayCommandTests.dmatrace(), ["validate"] + traces + ["--check", empty.path])
        #expect(bad.status == 1)
        #expect(bad.err.contains("validate: the measured tables differ from the ones in \(empty.path)"))
    }
}
