import TraceFormat

/// A hand-built trace shaped like the real Intel vIOMMU capture (Tests/Fixtures/real/intel-viommu-strict):
/// Linux 6.1, intel-iommu strict, virtio-blk 00:02.0 and virtio-net 00:03.0 with iommu_platform=on
/// (modern-only), transitional virtio-blk 00:04.0 without it, and the edu device 00:05.0 doing stray DMA that
/// faults twice (read reason 0x06 at 0x1000000, write reason 0x05 at 0x2345000; QEMU compresses each burst).
enum CaptureLike {
    static let ms: UInt64 = 1_000_000

    static func metadata() -> TraceMetadata {
        TraceMetadata(
            capture: CaptureFacts(
                kernelRelease: "6.1.0-56-amd64", qemuVersion: "7.2.22", machine: "q35", viommu: "intel-iommu",
                guestIOMMU: .translated, flushPolicy: .strict),
            devices: [
                DeviceInfo(
                    name: "0000:00:02.0", vendorID: 0x1AF4, deviceID: 0x1042, virtioType: "block", transport: .modern,
                    iommuPlatform: true, iommuGroup: 2),
                DeviceInfo(
                    name: "0000:00:03.0", vendorID: 0x1AF4, deviceID: 0x1041, virtioType: "net", transport: .modern,
                    iommuPlatform: true, iommuGroup: 3),
                DeviceInfo(
                    name: "0000:00:04.0", vendorID: 0x1AF4, deviceID: 0x1001, virtioType: "block",
                    transport: .transitional,
                    iommuPlatform: false, iommuGroup: 4),
                DeviceInfo(name: "0000:00:05.0", vendorID: 0x1234, deviceID: 0x11E8, iommuGroup: 5)
            ],
            inputs: [
                InputFile(path: "guest-ftrace-iommu.txt", format: "ftrace", positionUnit: .line),
                InputFile(path: "qemu-7.2-trace-full.log", format: "qemu-log", positionUnit: .line),
                InputFile(path: "guest-dmesg.txt", format: "dmesg", positionUnit: .line)
            ])
    }

    static func trace() -> EventBuffer {
        var b = EventBuffer(metadata: metadata())
        var line: UInt64 = 13
        var qline: UInt64 = 400
        func guest(_ kind: EventKind, _ t: UInt64, dev: UInt16, iova: UInt64, pa: UInt64 = 0, size: UInt64 = 4096) {
            b.append(
                Event(
                    kind: kind, timestamp: t, device: dev, flags: [.attributed], address: iova, address2: pa,
                    size: size,
                    source: 0, position: line))
            line += 1
        }
        func translate(_ t: UInt64, dev: UInt16, iova: UInt64, gpa: UInt64) {
            b.append(
                Event(
                    kind: .hostTranslate, timestamp: t, device: dev, address: iova, address2: gpa, size: 4096,
                    source: 1, position: qline))
            qline += 2
        }
        // Rings and a request buffer of virtio-blk, a ring of virtio-net. IOVAs as Linux 6.1's allocator hands them
        // out (each device its own domain): an 8 KiB ring of two non-contiguous pages is one allocation traced as two
        // maps, top-down below 4 GiB; a freed IOVA comes straight back from the per-CPU range cache.
        guest(.iommuMap, 3_279_753_000, dev: 0, iova: 0xFFFF_E000, pa: 0x420_A000)
        guest(.iommuMap, 3_279_760_000, dev: 0, iova: 0xFFFF_F000, pa: 0x420_7000)
        guest(.iommuMap, 3_280_298_000, dev: 1, iova: 0xFFFF_F000, pa: 0x422_B000)
        guest(.iommuMap, 3_282_094_000, dev: 0, iova: 0xFFFF_C000, pa: 0x422_8000)
        guest(.iommuMap, 3_282_100_000, dev: 0, iova: 0xFFFF_D000, pa: 0x420_2000)
        translate(3_290_000_000, dev: 0, iova: 0xFFFF_D000, gpa: 0x420_2000)
        translate(3_290_010_000, dev: 0, iova: 0xFFFF_D000, gpa: 0x420_2000)
        guest(.iommuMap, 3_308_273_000, dev: 0, iova: 0xFFFF_B000, pa: 0x421_F000)
        // Clock skew: this translation is stamped 0.2 ms after the unmap that follows it.
        guest(.iommuUnmap, 3_311_141_000, dev: 0, iova: 0xFFFF_B000, pa: 4096)
        translate(3_311_341_000, dev: 0, iova: 0xFFFF_B000, gpa: 0x421_F000)
        // ... and this one 0.1 ms before its map.
        translate(3_314_635_000, dev: 0, iova: 0xFFFF_B000, gpa: 0x431_0000)
        guest(.iommuMap, 3_314_735_000, dev: 0, iova: 0xFFFF_B000, pa: 0x431_0000)
        translate(3_315_000_000, dev: 1, iova: 0xFFFF_F000, gpa: 0x422_B000)
        guest(.iommuUnmap, 3_315_212_000, dev: 0, iova: 0xFFFF_B000, pa: 4096)
        translate(3_320_000_000, dev: 0, iova: 0xFFFF_E000, gpa: 0x420_A000)
        guest(.iommuMap, 7_097_702_000, dev: 1, iova: 0xFFFF_E000, pa: 0x42B_9000)
        translate(7_097_800_000, dev: 1, iova: 0xFFFF_E000, gpa: 0x42B_9000)
        guest(.iommuUnmap, 7_098_883_000, dev: 1, iova: 0xFFFF_E000, pa: 4096)
        // The edu device's stray DMA: 64 reads of 4 bytes, then 32 writes, one second apart.
        let t0: UInt64 = 7_303_500_000
        for i in 0..<64 as Range<UInt64> {
            b.append(
                Event(
                    kind: .hostFault, timestamp: t0 + i * 6_000, device: 3, detail: FaultSource.vtd.rawValue,
                    address: 0x100_0000 + i * 4, size: 4, aux: 6, source: 1, position: 10_569 + i * 2))
        }
        b.append(
            Event(
                kind: .guestFault, timestamp: 7_304_746_000, device: 3, detail: FaultSource.vtd.rawValue,
                address: 0x100_0000, aux: 6, source: 2, position: 391))
        let t1: UInt64 = 8_389_700_000
        for i in 0..<32 as Range<UInt64> {
            b.append(
                Event(
                    kind: .hostFault, timestamp: t1 + i * 6_000, device: 3, flags: .write,
                    detail: FaultSource.vtd.rawValue,
                    address: 0x234_5000 + i * 4, size: 4, aux: 5, source: 1, position: 10_708 + i * 2))
        }
        b.append(
            Event(
                kind: .guestFault, timestamp: 8_390_656_000, device: 3, flags: .write, detail: FaultSource.vtd.rawValue,
                address: 0x234_5000, aux: 5, source: 2, position: 393))
        // Host translations after the guest trace stopped (ftrace ended at 7.10 s): outside its coverage.
        translate(9_000_000_000, dev: 1, iova: 0xFFFF_4000, gpa: 0x1FF5_C000)
        return b
    }
}
