import Foundation
import Testing
@testable import Models
import DMATraceTestSupport

/// The version axis (`KERNEL[:RELEASE]`, `MODE[:QEMU[/MACHINE]]`) and the model facts that depend on it. Each
/// test states the corrected claim and checks that the old one no longer holds.
@Suite struct VersionAxisTests {
    let c = try! ModelCatalog.builtin()

    func parse(_ s: String) throws -> Scenario { try Scenario.parse(s, catalog: c) }

    @Test func defaultsKeepTheIDsAndTheBundledCapturesVersions() throws {
        let s = try parse("linux-6.1@qemu-viommu-virtio-translated")
        #expect(s.id == "linux-6.1@qemu-viommu-virtio-translated")
        // Naming the defaults explicitly gives the same scenario and id.
        let explicit = try parse("linux-6.1:6.1@qemu-viommu-virtio-translated:7.2/7.2")
        #expect(explicit.id == s.id)
        #expect(explicit.kernel == s.kernel && explicit.mode == s.mode)
        #expect(ModelVersions.defaultQEMU == "7.2")
        // A mode that never existed in 7.2 defaults to its nearest version.
        #expect(ModelVersions.defaultQEMU(for: try c.mode("qemu-viommu-virtio-bypass-pre2.9")) == "2.8")
        #expect(
            try parse("linux-4.0-bypass@qemu-viommu-virtio-bypass-pre2.9").id
                == "linux-4.0-bypass@qemu-viommu-virtio-bypass-pre2.9")
    }

    @Test func versionedIDsAndErrors() throws {
        #expect(try parse("linux-5.4:5.8+lazy@qemu-amd-iommu:10.0").id == "linux-5.4:5.8+lazy@qemu-amd-iommu:10.0")
        #expect(
            try parse("linux-6.1@qemu-viommu-virtio-translated:10.0/9.1").id
                == "linux-6.1@qemu-viommu-virtio-translated:10.0/9.1")
        for bad in [
            "linux-5.4:4.9@qemu-noiommu",  // outside the model's releases
            "linux-5.4:x@qemu-noiommu", "linux-5.4:@qemu-noiommu", "linux-6.1@qemu-noiommu:",
            "linux-6.1@qemu-viommu-virtio-translated:9.1/9.2",  // no 9.2 machine type in QEMU 9.1
            "linux-6.1@qemu-noiommu:7.2/7.2/1", "linux-6.1:6.1:6.1@qemu-noiommu"
        ] {
            #expect(throws: ModelError.self, "\(bad)") { try parse(bad) }
        }
        #expect(
            throws: ModelError.badScenario(
                "qemu-ir-only:7.0", reason: "QEMU mode qemu-ir-only exists in QEMU from 7.1, not 7.0")
        ) {
            try parse("linux-6.1@qemu-ir-only:7.0")
        }
    }

    /// intel-iommu aw-bits: 48 from machine type 9.2 (VTD_HOST_ADDRESS_WIDTH), 39 before and with
    /// pc_compat_9_1; the old models had 39 everywhere.
    @Test func intelAwBitsFollowTheMachineType() throws {
        for m in [
            "qemu-viommu-virtio-translated", "qemu-viommu-virtio-bypass", "qemu-viommu-bus-bypass", "qemu-ir-only"
        ] {
            #expect(try parse("linux-6.1@\(m)").mode.awBits == 39, "\(m)")
            #expect(try parse("linux-6.1@\(m):10.0").mode.awBits == 48, "\(m)")
            #expect(try parse("linux-6.1@\(m):9.2").mode.awBits == 48, "\(m)")
            #expect(try parse("linux-6.1@\(m):10.0/9.1").mode.awBits == 39, "\(m)")
        }
    }

    /// dma-translation=off arrived in QEMU 7.1 (was: 7.0); bypass_iommu is read from 6.2 (was: 6.1).
    @Test func modeAvailability() throws {
        #expect(try c.mode("qemu-ir-only").versions?.from == "7.1")
        #expect(throws: ModelError.self) { try parse("linux-6.1@qemu-ir-only:7.0") }
        #expect(try parse("linux-6.1@qemu-ir-only:7.1").mode.dmaTranslation == false)
        for m in ["qemu-viommu-bus-bypass", "qemu-viommu-bus-bypass-platform"] {
            #expect(throws: ModelError.self) { try parse("linux-6.1@\(m):6.1") }
            #expect(try parse("linux-6.1@\(m):6.2").mode.bypassBus)
        }
    }

    /// virtio-iommu boot-bypass exists from QEMU 7.0; before it unattached endpoints are blocked.
    @Test func virtioIOMMUBootBypassFrom70() throws {
        #expect(try parse("linux-6.1@qemu-virtio-iommu").mode.bootBypass)
        #expect(try parse("linux-6.1@qemu-virtio-iommu:7.0").mode.bootBypass)
        #expect(try parse("linux-6.1@qemu-virtio-iommu:6.2").mode.bootBypass == false)
        #expect(try parse("linux-6.1@qemu-virtio-iommu:5.0").mode.bootBypass == false)
        #expect(throws: ModelError.self) { try parse("linux-6.1@qemu-virtio-iommu:4.2") }
    }

    /// AMD: stray DMA to an unmapped IOVA is dropped silently up to QEMU 10.0 (`if (!pte) return;`, read in
    /// 9.2.4 and 10.0.13), reported as IO_PAGE_FAULT from 10.1 (to verify); event log garbled before 7.1.
    @Test func amdVersionRules() throws {
        #expect(try parse("linux-6.1@qemu-amd-iommu").mode.faults.silentNotPresent == true)
        #expect(try parse("linux-6.1@qemu-amd-iommu:10.0").mode.faults.silentNotPresent == true)
        let later = try parse("linux-6.1@qemu-amd-iommu:10.2").mode
        #expect(later.faults.silentNotPresent == false)
        #expect(later.notes!.contains { $0.hasPrefix("QEMU 10.2: to verify with a real boot") })
        #expect(
            try parse("linux-6.1@qemu-amd-iommu:10.0").mode.notes!.contains {
                $0.hasPrefix("QEMU 10.0: to verify with a real boot")
            })
        #expect(try parse("linux-6.1@qemu-amd-iommu:7.0").mode.faults.eventLog == .garbled)
        #expect(try parse("linux-6.1@qemu-amd-iommu:7.1").mode.faults.eventLog == nil)
        #expect(try parse("linux-6.1@qemu-amd-iommu").mode.faults.eventLog == nil)
    }

    /// Kernel facts per release: 5.8 per-device dma_ops (6fc7020cf298), default domain at boot from 5.3,
    /// 5.14's hex format, 4.6 two lines / 4.7 one line, 4.x deferred flush of 250 entries until 4.14.
    @Test func kernelReleaseRules() throws {
        let k54 = try parse("linux-5.4@qemu-noiommu").kernel
        #expect(k54.iommu.dmaOpsScope == .global)
        #expect(k54.iommu.contextAttach == .boot)  // was first-map
        #expect(try parse("linux-5.4:5.8@qemu-noiommu").kernel.iommu.dmaOpsScope == .perDevice)  // was global until 5.9
        #expect(try parse("linux-5.4:5.7@qemu-noiommu").kernel.iommu.dmaOpsScope == .global)
        #expect(try parse("linux-5.4:5.3@qemu-noiommu").kernel.dmesg.vtd == "4.7")
        #expect(c.kernel(forRelease: "5.3.18")?.id == "linux-5.4")  // was linux-4.8-platform
        #expect(try parse("linux-5.10@qemu-noiommu").kernel.dmesg.vtd == "5.4")
        #expect(try parse("linux-5.10:5.14@qemu-noiommu").kernel.dmesg.vtd == "5.14")  // was 5.4
        #expect(try parse("linux-4.6-xen@qemu-noiommu").kernel.dmesg.vtd == "4.4")  // was 4.7
        #expect(try parse("linux-4.6-xen:4.7@qemu-noiommu").kernel.dmesg.vtd == "4.7")
        #expect(try c.kernel("linux-legacy-bypass").dmesg.vtd == "3.x")  // was 4.4
        #expect(try parse("linux-4.0-bypass:4.1@qemu-noiommu").kernel.dmesg.vtd == "3.x")
        #expect(try parse("linux-4.0-bypass@qemu-noiommu").kernel.dmesg.vtd == "4.4")
        let k48 = try parse("linux-4.8-platform@qemu-noiommu").kernel
        #expect(k48.iommu.flushQueue == .init(timeoutMs: 10, entries: 250))  // was 256
        #expect(try parse("linux-4.8-platform:4.14@qemu-noiommu").kernel.iommu.flushQueue.entries == 256)
        #expect(try parse("linux-6.1@qemu-smmuv3").kernel.dmesg.smmuv3 == "raw")
        #expect(try parse("linux-6.1:6.15@qemu-smmuv3").kernel.dmesg.smmuv3 == "decoded")  // was raw to 6.18
        // The confidential-guest gate is x86 SEV from 5.13 (was: the model applied from 5.10).
        #expect(throws: ModelError.self) { try parse("linux-restricted-memory:5.10@qemu-cc-no-viommu") }
        #expect(try parse("linux-restricted-memory:5.13@qemu-cc-no-viommu").kernel.virtio.restrictedMemory)
    }

    /// Default invalidation policy: lazy on x86 Intel/AMD drivers (4.x intel_iommu_strict = 0; 5.15+ Kconfig
    /// DMA_LAZY on x86, Debian's config), strict where the vIOMMU forces it: AMD NpCache (QEMU always) from
    /// 5.14, Intel caching mode from 5.11. The old engine assumed strict whenever nothing was recorded.
    @Test func kernelDefaultPolicy() throws {
        #expect(try parse("linux-6.1@qemu-viommu-virtio-translated").kernelDefaultSetting == .lazy)
        #expect(try parse("linux-4.8-platform@qemu-viommu-virtio-translated").kernelDefaultSetting == .lazy)
        #expect(try parse("linux-6.1@qemu-amd-iommu").kernelDefaultSetting == .strict)  // NpCache
        #expect(try parse("linux-5.10@qemu-amd-iommu").kernelDefaultSetting == .lazy)  // before the NpCache rule
        #expect(try parse("linux-5.10:5.14@qemu-amd-iommu").kernelDefaultSetting == .strict)
        #expect(try parse("linux-4.8-platform@qemu-amd-iommu").kernelDefaultSetting == .lazy)
        #expect(try parse("linux-6.1@qemu-smmuv3").kernelDefaultSetting == .strict)
        #expect(try parse("linux-6.1@qemu-noiommu").kernelDefaultSetting == .off)
        // Caching mode (a user mode with caching-mode=on) forces strict from 5.11, even over `+lazy`.
        var cm = try c.mode("qemu-viommu-virtio-translated")
        cm.id = "qemu-cm"
        cm.cachingMode = true
        var cc = c
        try cc.add(.mode(cm), from: "cm.json")
        #expect(try Scenario.parse("linux-6.1@qemu-cm", catalog: cc).kernelDefaultSetting == .strict)
        #expect(try Scenario.parse("linux-6.1+lazy@qemu-cm", catalog: cc).effectiveSetting(recorded: nil) == .strict)
        #expect(try Scenario.parse("linux-5.10@qemu-cm", catalog: cc).kernelDefaultSetting == .lazy)
        #expect(try Scenario.parse("linux-5.10:5.11@qemu-cm", catalog: cc).kernelDefaultSetting == .strict)
        // `+default` names it.
        let d = try parse("linux-6.1+default@qemu-amd-iommu")
        #expect(d.guestIOMMU == .strict && d.id == "linux-6.1+default@qemu-amd-iommu")
        // Nothing recorded, nothing given: the kernel's default (was: strict).
        #expect(try parse("linux-6.1@qemu-viommu-virtio-translated").effectiveSetting(recorded: nil) == .lazy)
        #expect(try parse("linux-6.1@qemu-viommu-virtio-translated").effectiveSetting(recorded: .strict) == .strict)
    }

    /// Linux 5.10's amd-iommu keeps its flush queue under `iommu.strict=1` (it asks only `amd_iommu=fullflush`):
    /// a strict setting is lazy in effect there, and only there. Twins: the same setting on 6.1's amd-iommu and on
    /// 5.10's intel-iommu stays strict, and from 5.14 NpCache forces strict, which wins.
    @Test func linux510AMDIgnoresIommuStrict() throws {
        #expect(try parse("linux-5.10+strict@qemu-amd-iommu").effectiveSetting(recorded: nil) == .lazy)
        #expect(try parse("linux-5.10@qemu-amd-iommu").effectiveSetting(recorded: .strict) == .lazy)
        #expect(try parse("linux-5.4+strict@qemu-amd-iommu").effectiveSetting(recorded: nil) == .lazy)
        #expect(try parse("linux-6.1+strict@qemu-amd-iommu").effectiveSetting(recorded: nil) == .strict)
        #expect(try parse("linux-5.10+strict@qemu-viommu-virtio-translated").effectiveSetting(recorded: nil) == .strict)
        #expect(try parse("linux-5.10:5.14+strict@qemu-amd-iommu").effectiveSetting(recorded: nil) == .strict)
    }

    /// The IOVA range caches by release (`IOVA_MAG_SIZE`, `MAX_GLOBAL_MAGS`): 128-entry magazines and a
    /// 32-magazine depot up to 5.19, 127 from 6.0 (the Debian 6.1 capture intel-lazy-boot2 shows 127), an unbounded
    /// depot from 6.7; no search restart before 5.11.
    @Test func iovaCacheByRelease() throws {
        let k61 = try parse("linux-6.1@qemu-viommu-virtio-translated").kernel.iommu.iovaCacheInEffect
        #expect(k61.magazineSize == 127 && k61.depotLimit == 32)
        let k612 = try parse("linux-6.1:6.12@qemu-viommu-virtio-translated").kernel.iommu.iovaCache
        #expect(k612?.magazineSize == 127 && k612?.depotLimit == nil)
        let k66 = try parse("linux-6.1:6.6@qemu-viommu-virtio-translated").kernel.iommu.iovaCacheInEffect
        #expect(k66.magazineSize == 127 && k66.depotLimit == 32)
        let k519 = try parse("linux-6.1:5.19@qemu-viommu-virtio-translated").kernel.iommu.iovaCacheInEffect
        #expect(k519.magazineSize == 128 && k519.depotLimit == 32)
        #expect(try parse("linux-5.10@qemu-amd-iommu").kernel.iommu.iovaCacheInEffect.magazineSize == 128)
        #expect(
            try parse("linux-6.19-mapops@qemu-viommu-virtio-translated").kernel.iommu.iovaCache?.magazineSize == 127)
        #expect(try parse("linux-5.10@qemu-amd-iommu").kernel.iommu.iovaCache?.searchRetry == false)
    }

    /// Citations of documents outside the repository (the design notes, the research notes).
    static func outsideCitations(_ text: String) -> [String] {
        ["domain.md", "DESIGN", "reference/", "../shared", "§"].filter { text.contains($0) }
    }

    /// Every fact cites a primary source inside the model, never a document outside the repository.
    @Test func citationsArePrimarySources() throws {
        let dir = Repository.root.appendingPathComponent("Sources/Models/Builtin")
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) where name.hasSuffix(".json") {
            let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
            #expect(Self.outsideCitations(text) == [], "\(name)")
        }
        // Twin: the check catches the citations the models used to carry.
        #expect(Self.outsideCitations("L4.4 dmar.c:1578 (domain.md §4.3)") == ["domain.md", "§"])
        #expect(Self.outsideCitations("replay-fidelity (DESIGN 7.6)") == ["DESIGN"])
        for k in c.kernels.values {
            for r in k.byRelease ?? [] { #expect(!r.source.isEmpty) }
            for o in k.oopses ?? [] {
                #expect(o.source.contains("@") || o.source.contains("commit"), "\(k.id) \(o.id)")
            }
        }
    }

    /// Nothing in the product cites the design or research notes outside the repository
    /// (`grep -rnE 'DESIGN ?§|DESIGN [0-9]|reference/(domain|formats|anchors)\.md|\.\./shared'`).
    @Test func productCitesNoDocumentOutsideTheRepository() throws {
        let pattern = try Regex(#"DESIGN ?§|DESIGN [0-9]|reference/(domain|formats|anchors)\.md|\.\./shared"#)
        var files: [URL] = [Repository.root.appendingPathComponent("README.md")]
        for dir in ["Sources", "docs", "schemas"] {
            let e = FileManager.default.enumerator(
                at: Repository.root.appendingPathComponent(dir), includingPropertiesForKeys: nil)
            while let u = e?.nextObject() as? URL {
                if ["swift", "md", "json"].contains(u.pathExtension) { files.append(u) }
            }
        }
        #expect(files.count > 50)
        for f in files {
            let text = try String(contentsOf: f, encoding: .utf8)
            #expect(text.firstMatch(of: pattern) == nil, "\(f.path)")
        }
        #expect("rule: replay-fidelity (DESIGN 7.6)".firstMatch(of: pattern) != nil)  // twin
    }
}
