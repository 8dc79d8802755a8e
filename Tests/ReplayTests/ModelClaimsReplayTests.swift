import Foundation
import Models
import Testing
import TraceFormat
@testable import Replay
import DMATraceTestSupport

/// What the corrected model claims predict on a trace (the capture-like trace unless stated), each checked
/// against the old claim's prediction.
@Suite struct ModelClaimsReplayTests {
    func edu(_ id: String) throws -> DeviceResult {
        try device(try replay([id]).scenarios[0], "0000:00:05.0")
    }

    /// 3.x printed the two-line form under the 'dmar: ' prefix (was: 4.4's 'DMAR: DMAR:[...]').
    @Test func legacyKernelsPrintThe3xForm() throws {
        let d = try edu("linux-legacy-bypass@qemu-viommu-virtio-translated")
        #expect(
            d.groups[0].guestLog == [
                "dmar: DRHD: handling fault status reg 2",
                "dmar: DMAR:[DMA Read] Request device [00:05.0] fault addr 1000000 ",
                "DMAR:[fault reason 02] Present bit in context entry is clear"
            ])
        #expect(!d.groups[0].guestLog.contains { $0.hasPrefix("DMAR: DMAR:[") })
    }

    /// 4.6 still printed two lines; 4.7 one (was: one line for the whole 4.6-4.7 model).
    @Test func linux46PrintsTwoLines() throws {
        #expect(
            try edu("linux-4.6-xen@qemu-viommu-virtio-translated").groups[0].guestLog == [
                "DMAR: DRHD: handling fault status reg 2",
                "DMAR: DMAR:[DMA Read] Request device [00:05.0] fault addr 1000000 ",
                "DMAR:[fault reason 02] Present bit in context entry is clear"
            ])
        #expect(
            try edu("linux-4.6-xen:4.7@qemu-viommu-virtio-translated").groups[0].guestLog == [
                "DMAR: DRHD: handling fault status reg 2",
                "DMAR: [DMA Read] Request device [00:05.0] fault addr 1000000 [fault reason 02] Present bit in context entry is clear"
            ])
    }

    /// From 5.3 a default domain is attached at boot: the never-mapped edu device faults on its PTEs (0x06
    /// read, 0x05 write), not on its context entry (0x02) as 4.8-5.2 do.
    @Test func defaultDomainAtBootFrom53() throws {
        #expect(
            try edu("linux-5.4@qemu-viommu-virtio-translated").groups.map(\.key) == [
                "reason=0x05,write,stray", "reason=0x06,read,stray"
            ])
        #expect(
            try edu("linux-4.8-platform@qemu-viommu-virtio-translated").groups.map(\.key) == [
                "reason=0x02,read,stray", "reason=0x02,write,stray"
            ])
        #expect(
            try edu("linux-5.4@qemu-viommu-virtio-translated").groups[1].guestLog == [
                "DMAR: DRHD: handling fault status reg 2",
                "DMAR: [DMA Read] Request device [00:05.0] PASID ffffffff fault addr 1000000 [fault reason 06] PTE Read access is not set"
            ])
    }

    /// 5.14 printed hex, NO_PASID and `[0x00:0x05.0]` (commit 719a19335692); 5.10 the PASID/decimal line.
    @Test func linux514Format() throws {
        #expect(
            try edu("linux-5.10:5.14@qemu-viommu-virtio-translated").groups[1].guestLog == [
                "DMAR: DRHD: handling fault status reg 2",
                "DMAR: [DMA Read NO_PASID] Request device [0x00:0x05.0] fault addr 0x1000000 [fault reason 0x06] PTE Read access is not set"
            ])
        #expect(try edu("linux-5.10@qemu-viommu-virtio-translated").groups[1].guestLog[1].contains("PASID ffffffff"))
    }

    /// Per-device dma_ops from 5.8 (6fc7020cf298): a device outside every DRHD gets dma-direct and works;
    /// 5.4-5.7's global dma_ops fail its mappings (was: global until 5.9).
    @Test func perDeviceDMAOpsFrom58() throws {
        let s58 = try replay(["linux-5.4:5.8@qemu-viommu-bus-bypass-platform"]).scenarios[0]
        #expect(try device(s58, "0000:00:02.0").verdict == .ok)
        #expect(try device(s58, "0000:00:02.0").addressing == "gpa-untranslated")
        let s54 = try replay(["linux-5.4@qemu-viommu-bus-bypass-platform"]).scenarios[0]
        #expect(try device(s54, "0000:00:02.0").verdict == .mappingFailed)
    }

    /// The decoded SMMUv3 dump has two lines after the raw event (was: one, and only from 6.19).
    @Test func smmuDecodedLines() throws {
        let raw = Array(try edu("linux-6.1@qemu-smmuv3").groups[0].guestLog.prefix(6))
        #expect(raw[0] == "arm-smmu-v3 arm-smmu-v3.0.auto: event 0x10 received:")
        #expect(raw[5] == raw[0])  // the next record: no decoded lines in between
        #expect(raw[2] == "arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000020800000000")  // RnW and CLASS_IN
        for id in ["linux-6.1:6.15@qemu-smmuv3", "linux-6.19-mapops@qemu-smmuv3"] {
            let log = try edu(id).groups[0].guestLog
            #expect(Array(log.prefix(5)) == Array(raw.prefix(5)), "\(id)")
            #expect(
                Array(log[5..<7]) == [
                    "arm-smmu-v3 arm-smmu-v3.0.auto: event: F_TRANSLATION client: 0000:00:05.0 sid: 0x28 ssid: 0x0 iova: 0x1000000 ipa: 0x0",
                    "arm-smmu-v3 arm-smmu-v3.0.auto: unpriv data read s1 \"Input address caused fault\" stag: 0x0"
                ], "\(id)")
        }
    }

    /// AMD: silent up to QEMU 10.0, IO_PAGE_FAULT from 10.1 (to verify); 4.x kernels keep every device-table
    /// entry valid without permissions, so no ILLEGAL_DEV_TABLE_ENTRY for the unattached edu device.
    @Test func amdStrayDMAByVersionAndKernel() throws {
        for id in ["linux-6.1@qemu-amd-iommu", "linux-6.1@qemu-amd-iommu:10.0"] {
            let d = try edu(id)
            #expect(d.groups.allSatisfy { $0.outcome == .fault && $0.guestLog.isEmpty && $0.hostLog.isEmpty }, "\(id)")
        }
        let later = try edu("linux-6.1@qemu-amd-iommu:10.2")
        #expect(later.groups.map(\.key) == ["reason=0x02,read,stray", "reason=0x02,write,stray"])
        #expect(
            later.groups[0].guestLog.first
                == "pci 0000:00:05.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0004 address=0x1000000 flags=0x0000]"
        )
        let old = try edu("linux-4.8-platform@qemu-amd-iommu")
        // was ILLEGAL_DEV_TABLE_ENTRY (0x01)
        #expect(old.groups.map(\.key) == ["reason=0x02,read,stray", "reason=0x02,write,stray"])
        #expect(old.groups.allSatisfy { $0.guestLog.isEmpty })
        let oldLater = try edu("linux-4.8-platform@qemu-amd-iommu:10.2")
        #expect(
            oldLater.groups[0].guestLog.first
                == "AMD-Vi: Event logged [IO_PAGE_FAULT device=00:05.0 domain=0x0004 address=0x0000000001000000 flags=0x0000]"
        )
    }

    /// Before QEMU 7.1 amd-iommu's event log entries are garbled: no guest line is predicted for them.
    @Test func amdGarbledEventLog() throws {
        let f = try #require(DeviceFacts.build(from: CaptureLike.metadata()).last)
        let k = try catalog.kernel("linux-6.1")
        #expect(
            FaultFormat.guestLines(
                reason: 2, address: 0x1000, write: false, device: f, viommu: "amd-iommu", kernel: k,
                eventLog: .garbled) == [])
        #expect(
            FaultFormat.guestLines(reason: 2, address: 0x1000, write: false, device: f, viommu: "amd-iommu", kernel: k)
                .count == 1)
        // 4.x ILLEGAL_DEV_TABLE_ENTRY has no domain= (was printed with one).
        let k48 = try catalog.kernel("linux-4.8-platform")
        #expect(
            FaultFormat.guestLines(
                reason: 1, address: 0x1000, write: false, device: f, viommu: "amd-iommu", kernel: k48)
                == [
                    "AMD-Vi: Event logged [ILLEGAL_DEV_TABLE_ENTRY device=00:05.0 address=0x0000000000001000 flags=0x0000]"
                ])
    }

    /// virtio-iommu before QEMU 7.0 has no boot-bypass: a kernel without the driver never attaches its
    /// endpoints, so their DMA is blocked (was: bypass from 5.0 on).
    @Test func virtioIOMMUBeforeBootBypassBlocks() throws {
        let old = try replay(["linux-4.8-platform@qemu-virtio-iommu:6.2"]).scenarios[0]
        let d = try device(old, "0000:00:02.0")
        #expect(d.verdict == .fault)
        #expect(d.groups.contains { $0.key.hasPrefix("reason=0x01") })
        let now = try replay(["linux-4.8-platform@qemu-virtio-iommu"]).scenarios[0]
        #expect(try device(now, "0000:00:02.0").verdict == .ok)
    }
}

/// x86 guests before VIOT support (5.14) cannot use virtio-iommu: boot-bypass leaves their devices
/// untranslated (was: the 5.4 and 5.10 models drove the vIOMMU).
@Test func virtioIOMMUNeedsVIOTOnX86() throws {
    for k in ["linux-5.4", "linux-5.10"] {
        let s = try replay(["\(k)@qemu-virtio-iommu"]).scenarios[0]
        #expect(try device(s, "0000:00:02.0").addressing == "gpa-untranslated", "\(k)")
    }
    for k in ["linux-5.10:5.14", "linux-6.1"] {
        let s = try replay(["\(k)@qemu-virtio-iommu"]).scenarios[0]
        #expect(try device(s, "0000:00:02.0").addressing == "iova-translated", "\(k)")
    }
}

/// The report schema's verdicts are exactly the outcome classes (the new `oops` included).
@Test func reportSchemaListsEveryOutcomeClass() throws {
    let url = Repository.root.appendingPathComponent("schemas/report.schema.json")
    let text = try String(contentsOf: url, encoding: .utf8)
    let start = try #require(text.range(of: #""verdict": {"#))
    let tail = text[start.upperBound...]
    let end = try #require(tail.range(of: "]"))
    let names = tail[..<end.lowerBound].split(separator: "\"").enumerated().filter { $0.offset % 2 == 1 }.map {
        String($0.element)
    }
    #expect(names.dropFirst() == ArraySlice(OutcomeClass.allCases.map(\.rawValue)))
}

/// Oopses the kernel code shows, predicted from recorded DMA-API events.
@Suite struct OopsPredictionTests {
    /// One device doing DMA-API mappings of `sizes` (bytes) and unmapping them.
    static func trace(kernel: String, viommu: String, swiotlb: Bool, virtio: Bool, behindIOMMU: Bool, sizes: [UInt64])
        -> EventBuffer
    {
        let dev =
            virtio
            ? DeviceInfo(
                name: "0000:00:02.0", vendorID: 0x1AF4, deviceID: 0x1042, virtioType: "block", transport: .modern,
                iommuPlatform: true, iommuGroup: 2, behindIOMMU: behindIOMMU)
            : DeviceInfo(
                name: "0000:00:06.0", vendorID: 0x8086, deviceID: 0x100E, iommuGroup: 6, driver: "e1000",
                behindIOMMU: behindIOMMU)
        var b = EventBuffer(
            metadata: TraceMetadata(
                capture: CaptureFacts(
                    kernelRelease: kernel, qemuVersion: "7.2.22", machine: "q35", viommu: viommu,
                    guestIOMMU: viommu == "none" ? .off : .translated, flushPolicy: .strict,
                    swiotlbForced: swiotlb),
                devices: [dev], inputs: [InputFile(path: "ftrace.txt", format: "ftrace", positionUnit: .line)]))
        var t: UInt64 = 1_000_000
        var line: UInt64 = 1
        for (i, size) in sizes.enumerated() {
            let gpa = 0x1000_0000 + UInt64(i) * 0x10_0000
            b.append(
                Event(
                    kind: .dmaMap, timestamp: t, device: 0, direction: .fromDevice, detail: MapAPI.page.rawValue,
                    address: gpa, address2: gpa, size: size, source: 0, position: line))
            b.append(
                Event(
                    kind: .dmaUnmap, timestamp: t + 500_000, device: 0, direction: .fromDevice,
                    detail: MapAPI.page.rawValue, address: gpa, size: size, source: 0, position: line + 1))
            t += 1_000_000
            line += 2
        }
        return b
    }

    static func run(_ b: EventBuffer, _ id: String) throws -> DeviceResult {
        let s = try Scenario.parse(id, catalog: catalog)
        let r = try ReplayEngine(scenarios: [s], recorded: nil).run(b, tracePath: "t")
        return try #require(r.scenarios[0].devices.first)
    }

    /// intel_unmap()'s BUG_ON(!domain): a non-virtio driver's mapping fails under the global intel dma_ops
    /// (device outside every DRHD); its unmap of the failed handle oopses in 4.8-5.7, not from 5.8.
    @Test func intelUnmapBugOn() throws {
        let b = Self.trace(
            kernel: "4.9.0-13-amd64", viommu: "intel-iommu", swiotlb: false, virtio: false, behindIOMMU: false,
            sizes: [1500, 1500])
        let d = try Self.run(b, "linux-4.8-platform@qemu-viommu-virtio-translated")
        #expect(d.verdict == .oops)
        let g = try #require(d.groups.first { $0.outcome == .oops })
        #expect(g.key == "unmap-after-failed-map")
        #expect(g.count == 2)
        #expect(g.first?.eventIndex == 0)
        #expect(
            g.guestLog == [
                "kernel BUG at drivers/iommu/intel-iommu.c:3705!", "invalid opcode: 0000 [#1] SMP",
                "RIP: 0010:intel_unmap+0x"
            ])
        #expect(g.explanation.hasPrefix("intel_unmap() (Linux 4.8-5.2) oopses"))
        #expect(d.groups.contains { $0.outcome == .mappingFailed })
        let d54 = try Self.run(b, "linux-5.4@qemu-viommu-virtio-translated")
        #expect(
            try #require(d54.groups.first { $0.outcome == .oops }).guestLog.first
                == "kernel BUG at drivers/iommu/intel-iommu.c:3590!")
        // 5.8's per-device dma_ops give the device dma-direct: no mapping failure, no oops.
        #expect(try Self.run(b, "linux-5.4:5.8@qemu-viommu-virtio-translated").verdict == .ok)
        #expect(try Self.run(b, "linux-6.1@qemu-viommu-virtio-translated").verdict == .ok)
        // A device inside the DRHD scope maps fine under 4.8.
        let inScope = Self.trace(
            kernel: "4.9.0-13-amd64", viommu: "intel-iommu", swiotlb: false, virtio: false, behindIOMMU: true,
            sizes: [1500])
        #expect(
            try Self.run(inScope, "linux-4.8-platform@qemu-viommu-virtio-translated").groups.allSatisfy {
                $0.outcome != .oops
            })
    }

    /// swiotlb_full()'s panic: with swiotlb=force a mapping larger than one swiotlb segment (256 KiB) cannot be
    /// bounced; kernels up to 4.19 panic (size > io_tlb_overflow), later ones return a mapping error.
    @Test func swiotlbFullPanics() throws {
        let big = Self.trace(
            kernel: "4.9.0-13-amd64", viommu: "none", swiotlb: true, virtio: true, behindIOMMU: true,
            sizes: [4096, 512 * 1024])
        let d = try Self.run(big, "linux-4.8-platform@qemu-cc-no-viommu")
        #expect(d.verdict == .oops)
        #expect(d.addressing == "bounce-gpa")
        let g = try #require(d.groups.first { $0.outcome == .oops })
        #expect(g.key == "bounce-does-not-fit")
        #expect(g.first?.eventIndex == 2)
        #expect(
            g.guestLog == [
                "DMA: Out of SW-IOMMU space for 524288 bytes at device 0000:00:02.0",
                "Kernel panic - not syncing: DMA: Random memory could be DMA written"
            ])
        // The fix reached 4.19.y stable only in 2019: 4.19 panics, 5.0 does not.
        #expect(try Self.run(big, "linux-4.8-platform:4.19@qemu-cc-no-viommu").verdict == .oops)
        #expect(try Self.run(big, "linux-4.8-platform:5.0@qemu-cc-no-viommu").verdict == .mappingFailed)
        // 5.4 has no panic: a mapping error.
        let d54 = try Self.run(big, "linux-5.4@qemu-cc-no-viommu")
        #expect(d54.verdict == .mappingFailed)
        #expect(d54.groups.map(\.key).contains("bounce-does-not-fit"))
        // Mappings that fit a segment bounce fine.
        let small = Self.trace(
            kernel: "4.9.0-13-amd64", viommu: "none", swiotlb: true, virtio: true, behindIOMMU: true,
            sizes: [4096, 256 * 1024])
        #expect(try Self.run(small, "linux-4.8-platform@qemu-cc-no-viommu").verdict == .ok)
        // Without swiotlb=force dma-direct does not bounce: nothing to overflow.
        let direct = Self.trace(
            kernel: "4.9.0-13-amd64", viommu: "none", swiotlb: false, virtio: true, behindIOMMU: true,
            sizes: [512 * 1024])
        let dd = try Self.run(direct, "linux-4.8-platform@qemu-cc-no-viommu")
        #expect(dd.verdict == .ok && dd.addressing == "gpa-untranslated")
    }
}
