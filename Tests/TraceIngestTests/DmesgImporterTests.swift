import Testing
import TraceFormat
@testable import TraceIngest

@Suite struct DmesgImporterTests {
    private func faults(_ buf: EventBuffer) -> [Event] { buf.events.filter { $0.kind == .guestFault } }

    @Test func realGuestDmesg() throws {
        let input = try IngestInput.open(Fixtures.path("\(Fixtures.strict)/guest-dmesg.txt"))
        let (buf, d) = try Fixtures.run(DmesgImporter(), input, source: 2, clock: 0)
        let f = faults(buf)
        #expect(f.count == 2)
        let dev = try #require(buf.metadata.deviceIndex(named: "0000:00:05.0"))
        #expect(f[0].device == dev && f[1].device == dev)
        #expect(f[0].aux == 0x06 && f[0].address == 0x1000000 && !f[0].eventFlags.contains(.write))
        #expect(f[1].aux == 0x05 && f[1].address == 0x2345000 && f[1].eventFlags.contains(.write))
        #expect(f[0].detail == FaultSource.vtd.rawValue)
        #expect(buf.string(f[0].aux2) == "PTE Read access is not set")
        #expect(f[0].timestamp == 7_304_746_000)
        #expect(f[0].position == 391 && f[0].source == 2)
        let c = buf.metadata.capture
        #expect(c.flushPolicy == .strict)
        #expect(c.guestIOMMU == .translated)
        #expect(c.kernelRelease == "6.1.0-56-amd64")
        #expect(c.kernelCommandLine == "console=ttyS0 intel_iommu=on iommu.strict=1 loglevel=7 capmode=full panic=-1")
        #expect(c.viommu == "intel-iommu")
        let blk = buf.metadata.devices[Int(try #require(buf.metadata.deviceIndex(named: "0000:00:02.0")))]
        #expect(blk.iommuGroup == 2 && blk.sid == 0x10 && blk.deviceID == 0x1042 && blk.virtioType == "block")
        #expect(blk.transport == .modern)
        #expect(buf.metadata.devices[Int(dev)].sid == 0x28)
        #expect(d.understood["iommu_group"] == 9)
        #expect(d.understood["dmar_fault"] == 2)
        #expect(d.skipped == 0)
    }

    @Test func realDmarExcerpt() throws {
        let input = try IngestInput.open(Fixtures.path("real/dmesg-linux6.1-intel-viommu-dmar-faults-real.txt"))
        let (buf, _) = try Fixtures.run(DmesgImporter(), input)
        #expect(faults(buf).map(\.aux) == [6, 5])
        #expect(buf.metadata.capture.flushPolicy == .strict)
    }

    /// The decimal/hex trap: before 5.14/5.15 `[fault reason 37]` is decimal (0x25), after it is `0x..`.
    @Test(arguments: [
        ("intel-dmar-linux4.19-synthetic.txt", [UInt32(6), 5], [UInt64(0x1000000), 0x2345000]),
        ("intel-dmar-linux5.10-synthetic.txt", [6, 5], [0x1000000, 0x2345000]),
        ("intel-dmar-linux5.14-synthetic.txt", [6, 5], [0x1000000, 0x2345000]),
        ("intel-dmar-linux6.x-pasid-synthetic.txt", [0x71, 6], [0x7f3a2c000000, 0xfffff000])
    ])
    func dmarEras(file: String, reasons: [UInt32], addresses: [UInt64]) throws {
        let input = try IngestInput.open(Fixtures.path("synthetic/dmesg-variants/\(file)"))
        let (buf, d) = try Fixtures.run(DmesgImporter(), input)
        #expect(faults(buf).map(\.aux) == reasons)
        #expect(faults(buf).map(\.address) == addresses)
        #expect(d.skipped == 0)
        let dev = buf.metadata.devices[Int(faults(buf)[0].device)]
        #expect(dev.name == "0000:00:05.0" && dev.sid == 0x28)
    }

    /// Interrupt-remapping faults are their own kind (an interrupt index, not a DMA address); the 4.19
    /// line's reason is decimal (37 = 0x25).
    @Test func intrRemapIsItsOwnKind() throws {
        let input = try IngestInput.open(Fixtures.path("synthetic/dmesg-variants/intel-dmar-linux4.19-synthetic.txt"))
        let (buf, _) = try Fixtures.run(DmesgImporter(), input)
        let ir = buf.events.filter { $0.kind == .intrRemapFault }
        #expect(ir.map(\.aux) == [0x25])
        #expect(ir.map(\.address) == [0x17])
        #expect(buf.metadata.devices[Int(ir[0].device)].name == "0000:00:1f.0")
        #expect(!faults(buf).contains { $0.address == 0x17 })
    }

    @Test func twoLineLinux44Form() throws {
        let text = """
            [    7.1] DMAR: DMAR:[DMA Read] Request device [00:03.0] fault addr 7fff0000 
            [    7.1] DMAR:[fault reason 06] PTE Read access is not set
            [    7.2] DMAR: DMAR:[DMA Write] Request device [00:03.0] fault addr 7fff1000 
            [    7.3] DMAR:[fault reason 12] non-zero reserved fields in PTE
            """
        let (buf, _) = try Fixtures.run(DmesgImporter(), Fixtures.text(text))
        #expect(faults(buf).map(\.aux) == [6, 12])
        #expect(faults(buf).map(\.address) == [0x7fff0000, 0x7fff1000])
        #expect(buf.string(faults(buf)[0].aux2) == "PTE Read access is not set")
    }

    @Test func amdVi() throws {
        let input = try IngestInput.open(Fixtures.path("synthetic/dmesg-variants/amd-vi-variants-synthetic.txt"))
        let (buf, _) = try Fixtures.run(DmesgImporter(), input)
        let f = faults(buf)
        #expect(f.count == 5)
        #expect(f.allSatisfy { $0.detail == FaultSource.amdvi.rawValue && $0.aux == 2 })
        #expect(f.map(\.address) == [0x1000000, 0x2345000, 0x1000000, 0x2345000, 0x1000000])
        #expect(f.map { $0.eventFlags.contains(.write) } == [false, true, false, true, false])
        #expect(
            f.map { buf.metadata.devices[Int($0.device)].name } == [
                "0000:00:05.0", "0000:00:05.0", "0000:00:05.0", "0000:00:05.0", "0000:00:06.0"
            ])
    }

    @Test func smmuV3RawAndDecoded() throws {
        let input = try IngestInput.open(Fixtures.path("synthetic/dmesg-variants/arm-smmu-v3-synthetic.txt"))
        let (buf, d) = try Fixtures.run(DmesgImporter(), input)
        let f = buf.events.filter { $0.kind == .smmuv3Event }
        #expect(faults(buf).isEmpty)
        #expect(f.count == 2)
        #expect(
            f.allSatisfy {
                $0.detail == 0x10 && $0.aux == 0x10 && $0.address == 0x1000000 && !$0.eventFlags.contains(.write)
            })
        #expect(buf.string(f[0].aux2) == "F_TRANSLATION")
        #expect(buf.metadata.devices[Int(f[0].device)].sid == 0x10)
        #expect(buf.metadata.devices[Int(f[1].device)].name == "0000:00:02.0")
        #expect(d.skipped == 0)
    }

    /// A decoded (6.15) line joins the raw dump before it only when it names the same event and stream;
    /// a 5.x raw-only dump followed by another event's decoded line stays two events.
    @Test func smmuV3DecodedLineOfAnotherEventIsNotMerged() throws {
        let text = """
            [ 1.0] arm-smmu-v3 arm-smmu-v3.0.auto: event 0x10 received:
            [ 1.0] arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000001800000010
            [ 1.0] arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000000200000000
            [ 1.0] arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000000080004000
            [ 1.0] arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000000000000000
            [ 2.0] arm-smmu-v3 arm-smmu-v3.0.auto: event: F_PERMISSION client: 0000:01:00.0 sid: 0x100 ssid: 0x3 iova: 0x7fff0000 ipa: 0x0
            """
        let (buf, d) = try Fixtures.run(DmesgImporter(), Fixtures.text(text))
        let e = buf.events.filter { $0.kind == .smmuv3Event }.sorted { $0.position < $1.position }
        #expect(e.map(\.detail) == [0x10, 0x13])
        #expect(e.map(\.aux) == [0x18, 0x100])
        #expect(e.map(\.address) == [0x80004000, 0x7fff0000])
        #expect(d.skipped == 0)
    }

    /// Lines that merely mention an overflow and a mask are not DMA overflow reports (no warning, no event);
    /// the `%pad+%zu` form is.
    @Test func overflowNeedsTheAddressPlusSizeForm() throws {
        let text = """
            [ 1.0] TCP: request_sock_TCP: Possible SYN flooding on port 22. Sending cookies. overflow of accept mask + 1
            [ 2.0] vc4-drm gpu: overflow 0x00000001a7296000+708608 of DMA mask ffffffff bus limit ffffffff
            """
        let (buf, d) = try Fixtures.run(DmesgImporter(), Fixtures.text(text))
        #expect(buf.events.map(\.kind) == [.dmaMapError])
        #expect(buf.events.first?.address == 0x1a7296000 && buf.events.first?.size == 708608)
        #expect(d.skipped == 0)
    }

    @Test func dmaApiDebug() throws {
        let input = try IngestInput.open(Fixtures.path("synthetic/dmesg-variants/dma-api-debug-synthetic.txt"))
        let (buf, _) = try Fixtures.run(DmesgImporter(), input)
        let w = buf.events.filter { $0.kind == .dmaDebugWarning }
        #expect(w.map(\.aux2) == [2, 3, 7])
        #expect(w.map(\.address) == [0xffffb640, 0xfffef000, 0xffffa000])
        #expect(w.map(\.size) == [16, 32768, 4096])
        #expect(buf.string(w[0].aux) == "device driver tries to free DMA memory it has not allocated")
        #expect(buf.metadata.devices[Int(w[1].device)].name == "0000:00:03.0")
        let fw = try Fixtures.run(
            DmesgImporter(),
            Fixtures.text(
                "[ 1.0] forcedeth 0000:00:08.0: DMA-API: device driver frees DMA memory with wrong function [device address=0x00000000640444be] [size=66 bytes] [mapped as single] [unmapped as page]"
            )
        ).0
        let e = try #require(fw.events.first)
        #expect(e.aux2 == 4 && e.address == 0x640444be && e.size == 66)
        #expect(fw.metadata.devices[Int(e.device)].name == "0000:00:08.0")
    }

    @Test func virtioProbeFailures() throws {
        let text = """
            [    2.0] virtio_net virtio1: virtio: device refuses features: 0
            [    2.1] virtio_net virtio1: device must provide VIRTIO_F_ACCESS_PLATFORM
            [    2.2] virtio_net virtio1: probe with driver virtio_net failed with error -12
            [    2.3] virtio_blk: probe of virtio0 failed with error -22
            """
        let (buf, d) = try Fixtures.run(DmesgImporter(), Fixtures.text(text))
        let p = buf.events.filter { $0.kind == .virtioProbe }
        #expect(p.map(\.detail) == [ProbeResult.refusedFeatures.rawValue, 1, 1, 1])
        #expect(p.map(\.aux2) == [0, 0, 12, 22])
        #expect(p.map { buf.metadata.devices[Int($0.device)].name } == ["virtio1", "virtio1", "virtio1", "virtio0"])
        #expect(buf.metadata.devices[0].iommuPlatform == false)
        #expect(buf.string(p[1].aux) == "device must provide VIRTIO_F_ACCESS_PLATFORM")
        #expect(d.understood["virtio_probe"] == 4)
    }

    @Test func journalctlLines() throws {
        let text = """
            Nov 25 10:00:01 guest kernel: Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org)
            Nov 25 10:00:02 guest kernel: iommu: DMA domain TLB invalidation policy: lazy mode
            [    7.304746] guest kernel: DMAR: [DMA Read NO_PASID] Request device [00:05.0] fault addr 0x1000000 [fault reason 0x06] PTE Read access is not set
            """
        let (buf, _) = try Fixtures.run(DmesgImporter(), Fixtures.text(text))
        #expect(buf.metadata.capture.kernelRelease == "6.1.0-56-amd64")
        #expect(buf.metadata.capture.flushPolicy == .lazy)
        #expect(faults(buf).map(\.timestamp) == [7_304_746_000])
    }

    @Test func passthroughAndLazyFacts() throws {
        let text = """
            [    0.000000] Command line: console=ttyS0 iommu=pt swiotlb=force
            [    1.3] iommu: Default domain type: Passthrough (set via kernel command line)
            [    1.4] iommu: DMA domain TLB invalidation policy: lazy mode
            """
        let (buf, _) = try Fixtures.run(DmesgImporter(), Fixtures.text(text))
        #expect(buf.metadata.capture.guestIOMMU == .passthrough)
        #expect(buf.metadata.capture.flushPolicy == .lazy)
        #expect(buf.metadata.capture.swiotlbForced == true)
    }

    @Test func garbageAndMixedUpInput() throws {
        let junk = IngestInput(path: "x.bin", bytes: [0, 1, 2, 3, 10, 0, 9, 8, 10])
        #expect(
            throws: IngestError.badFormat(
                path: "x.bin", offset: 0, reason: "not a kernel log: 2 of 2 lines hold binary data")
        ) {
            try Fixtures.run(DmesgImporter(), junk)
        }
        let text =
            "[ 7.3] DMAR: [DMA Read NO_PASID] Request device [zz:05.0] fault addr 0x1 [fault reason 0x06] x\nhello\n"
        let (buf, d) = try Fixtures.run(DmesgImporter(), Fixtures.text(text, path: "m.txt"))
        #expect(buf.events.isEmpty)
        #expect(
            d.problems.map(\.description) == [
                "m.txt:1: DMAR fault line with a malformed device: [ 7.3] DMAR: [DMA Read NO_PASID] Request device [zz:05.0] fault addr 0x1 [fault reason 0x06] x"
            ])
    }
}
