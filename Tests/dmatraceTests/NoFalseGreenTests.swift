import DMATraceTestSupport
import Foundation
import Testing

/// Gates that never lie: an ingest that understood nothing, guest and host inputs of different runs, a
/// recorded replay that diverged, and a diff whose new report covers less than its base are never a green
/// exit 0; each has a twin showing the good case still passes.
@Suite(.tags(.subprocess, .realCapture), .serialized) struct NoFalseGreenTests {
    static let raw = CLI.root + "/traces/raw/"

    @Test func anInputOfWhichNothingWasUnderstoodIsRefused() throws {
        let dir = try CLI.temporaryDirectory("nfg-empty")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = FileManager.default.createFile(
            atPath: dir + "/notes.txt", contents: Data("hello world\nthis is text\n".utf8))
        let r = try CLI.runCapturing(["ingest", "--format", "qemu-log", dir + "/notes.txt", "-o", dir + "/x.dmat"])
        #expect(r.status == 2)
        #expect(
            r.stderr.contains("dmatrace: \(dir)/notes.txt: nothing understood as qemu-log in 25 bytes: "), "\(r.stderr)"
        )
        #expect(r.stderr.contains("2 unknown event(s) (hello, this)"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.dmat"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["notes.txt"])
        // A dmesg with boot facts but no DMA event: no events at all.
        let d = try CLI.runCapturing(["ingest", Self.raw + "swiotlb-force/guest-dmesg.txt", "-o", dir + "/d.dmat"])
        #expect(d.status == 2)
        #expect(d.stderr.contains(": no events: "), "\(d.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/d.dmat"))
        // The twins: --allow-empty writes them; a real capture is not refused.
        let a = try CLI.runCapturing([
            "ingest", "--allow-empty", "--format", "qemu-log", dir + "/notes.txt", "-o", dir + "/x.dmat"
        ])
        #expect(a.status == 0, "\(a.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/x.dmat"))
        let ok = try CLI.runCapturing([
            "ingest", Self.raw + "swiotlb-force/guest-ftrace.txt.zst", Self.raw + "swiotlb-force/guest-dmesg.txt",
            "--dry-run"
        ])
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    @Test func guestAndHostOfDifferentRunsAreRefusedWithTheEvidence() throws {
        let dir = try CLI.temporaryDirectory("nfg-merge")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let mixed = [
            Self.raw + "intel-strict/guest-ftrace.txt.zst", Self.raw + "intel-strict/guest-dmesg.txt",
            Self.raw + "amd-viommu/qemu-trace.log.zst"
        ]
        let r = try CLI.runCapturing(["ingest"] + mixed + ["-o", dir + "/m.dmat"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("do not look like one run: the guest shows intel-iommu"), "\(r.stderr)")
        #expect(r.stderr.contains("but the host log amd-iommu"))
        #expect(r.stderr.contains("guest iommu events could not be attributed to a device"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/m.dmat"))
        // Without the guest dmesg the vIOMMU kinds cannot be compared: poor attribution alone is a warning (real
        // captures of one run can align poorly too).
        let noKind = try CLI.runCapturing(["ingest", "--dry-run", mixed[0], mixed[2]])
        #expect(noKind.status == 0)
        #expect(
            noKind.stderr.contains(
                "weak guest/host alignment (are these inputs of one run?): 875 of 1746 guest iommu events could not be attributed"
            ), "\(noKind.stderr)")
        // The twin: the guest and host of one run merge.
        for c in ["intel-strict", "amd-viommu", "intel-lazy"] {
            let one = try CLI.runCapturing([
                "ingest", "--dry-run", Self.raw + "\(c)/guest-ftrace.txt.zst", Self.raw + "\(c)/guest-dmesg.txt",
                Self.raw + "\(c)/qemu-trace.log.zst"
            ])
            #expect(one.status == 0, "\(c): \(one.stderr)")
        }
        // --force-merge merges with a warning; the recorded replay then diverges and says so.
        let f = try CLI.runCapturing(["ingest", "--force-merge"] + mixed + ["-o", dir + "/m.dmat"])
        #expect(f.status == 0, "\(f.stderr)")
        #expect(f.stderr.contains("dmatrace: --force-merge: "))
        let rep = try CLI.runCapturing(["replay", dir + "/m.dmat", "--recorded"])
        #expect(rep.status == 0)
        #expect(rep.stdout.contains("(recorded): diverged\n"), "\(rep.stdout.prefix(400))")
        #expect(!rep.stdout.contains("(recorded): works"))
        let fail = try CLI.runCapturing(["replay", dir + "/m.dmat", "--recorded", "--fail-on-findings"])
        #expect(fail.status == 1)
        let m = try CLI.runCapturing([
            "matrix", dir + "/m.dmat", "--kernels", "linux-6.1", "--modes", "qemu-viommu-virtio-translated", "--details"
        ])
        // Never "works": the cell lists the device that fails there, or says diverged when none does.
        #expect(!m.stdout.contains("qemu-viommu-virtio-translated: works"), "\(m.stdout)")
        #expect(
            m.stdout.contains("qemu-viommu-virtio-translated: diverged")
                || m.stdout.contains("qemu-viommu-virtio-translated: 0000:00:02.0 fault"),
            "\(m.stdout)")
        #expect(m.stdout.contains("modes in which every selected kernel works: none"))
        // The answer says so first, and the cell is D (diverged), never a working symbol.
        let a = try CLI.runCapturing([
            "matrix", dir + "/m.dmat", "--kernels", "linux-6.1", "--modes", "qemu-viommu-virtio-translated"
        ])
        #expect(a.stdout.hasPrefix("answer: the recorded replay of m diverged from the recording"), "\(a.stdout)")
        #expect(a.stdout.contains("qemu-viommu-virtio-translated  D"))
        // The twin: the real capture's recorded replay works and passes the gate.
        let good = try CLI.runCapturing([
            "replay", CLI.root + "/traces/intel-strict.dmat", "--recorded", "--fail-on-findings"
        ])
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stdout.contains("(recorded): works\n"))
    }

    /// The twin over every real capture in traces/raw: each run's guest and host inputs merge without a
    /// refusal (a poorly aligned one with a warning).
    @Test func everyRealCaptureOfOneRunIsAccepted() throws {
        let fm = FileManager.default
        var checked = 0
        for config in try fm.contentsOfDirectory(atPath: Self.raw).sorted() {
            let dir = Self.raw + config + "/"
            let files = (try? fm.contentsOfDirectory(atPath: dir)) ?? []
            guard let ftrace = files.first(where: { $0.hasPrefix("guest-ftrace.txt") }),
                files.contains("qemu-trace.log.zst"),
                files.contains("guest-dmesg.txt")
            else { continue }
            let r = try CLI.runCapturing([
                "ingest", "--dry-run", "--quiet", dir + ftrace, dir + "guest-dmesg.txt", dir + "qemu-trace.log.zst"
            ])
            #expect(r.status == 0, "\(config): \(r.stderr)")
            checked += 1
        }
        #expect(checked >= 6)
    }

    @Test func aDiffWhoseNewReportCoversLessIsRefused() throws {
        let dir = try CLI.temporaryDirectory("nfg-diff")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let strict = CLI.root + "/traces/intel-strict.dmat", amd = CLI.root + "/traces/amd-viommu.dmat"
        let modes = ["--modes", "qemu-viommu-virtio-translated,qemu-viommu-virtio-bypass,qemu-noiommu"]
        func matrix(_ args: [String], _ out: String) throws {
            let r = try CLI.runCapturing(["matrix"] + args + ["--format", "json", "-o", dir + "/" + out])
            #expect(r.status == 0, "\(r.stderr)")
        }
        try matrix([strict, amd] + modes, "base.json")
        try matrix([strict] + modes, "one-trace.json")
        try matrix([strict, amd, "--modes", "qemu-viommu-virtio-translated,qemu-noiommu"], "fewer-modes.json")
        for (new, lost) in [
            ("one-trace.json", "trace amd-viommu"), ("fewer-modes.json", "mode qemu-viommu-virtio-bypass")
        ] {
            let r = try CLI.runCapturing(["diff", dir + "/base.json", dir + "/" + new, "--fail-on", "any"])
            #expect(r.status == 2, "\(new): \(r.stdout.prefix(300))")
            #expect(r.stderr.contains("covers less than the base \(dir)/base.json: \(lost)"), "\(r.stderr)")
            #expect(r.stdout.isEmpty)
            // Allowed, it is reported loudly in text and Markdown.
            let t = try CLI.runCapturing(["diff", dir + "/base.json", dir + "/" + new, "--allow-coverage-change"])
            #expect(t.status == 0)
            #expect(t.stdout.contains("WARNING: the new report covers less than the base (\(lost)"), "\(t.stdout)")
            let md = try CLI.runCapturing([
                "diff", dir + "/base.json", dir + "/" + new, "--allow-coverage-change", "--format", "markdown"
            ])
            #expect(
                md.stdout.contains("**The new report covers less than the base**: \(lost)"), "\(md.stdout.prefix(600))")
        }
        // --baseline of matrix is the same gate.
        let b = try CLI.runCapturing(
            ["matrix", strict] + modes + ["--baseline", dir + "/base.json", "--fail-on", "any"])
        #expect(b.status == 2)
        #expect(b.stderr.contains("current run: covers less than the base"))
        // The twin: the same coverage diffs, stating it for both sides.
        let same = try CLI.runCapturing(["diff", dir + "/base.json", dir + "/base.json", "--fail-on", "any"])
        #expect(same.status == 0)
        let coverage = try #require(
            same.stdout.split(separator: "\n").first { $0.hasPrefix("coverage: base 2 trace(s), ") }, "\(same.stdout)")
        let sides = coverage.dropFirst("coverage: ".count).components(separatedBy: "; new ")
        #expect(
            sides.count == 2 && sides[0] == "base " + sides[1] && sides[1].hasSuffix(", 3 mode(s), 8 device(s)"),
            "\(coverage)")
        #expect(!same.stdout.contains("WARNING"))
        // More coverage in the new report is not a loss.
        let more = try CLI.runCapturing(["diff", dir + "/one-trace.json", dir + "/base.json"])
        #expect(more.status == 0, "\(more.stderr)")
    }
}
