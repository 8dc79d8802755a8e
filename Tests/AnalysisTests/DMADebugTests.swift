import Testing
import TraceFormat
import Replay
@testable import Analysis

/// A one-device trace (`0000:00:03.0`, driver `virtio-pci`) from one JSONL input, one event per line.
private func trace(_ events: [Event], kernel: String = "6.15.0") -> EventBuffer {
    var meta = TraceMetadata(capture: CaptureFacts(kernelRelease: kernel))
    meta.devices = [DeviceInfo(name: "0000:00:03.0", driver: "virtio-pci")]
    meta.inputs = [InputFile(path: "case.jsonl", format: "jsonl", positionUnit: .line)]
    let evs = events.enumerated().map { i, e -> Event in
        var e = e
        e.device = 0
        e.source = 0
        e.position = UInt64(i + 1)
        e.timestamp = UInt64(i) * 1000
        return e
    }
    return EventBuffer(metadata: meta, events: evs)
}

private func map(
    _ a: UInt64, _ size: UInt64, _ dir: DMADirection = .toDevice, phys: UInt64 = 0x10_0000,
    api: MapAPI = .single, attrs: UInt32 = 0
) -> Event {
    Event(kind: .dmaMap, direction: dir, detail: api.rawValue, address: a, address2: phys, size: size, aux: attrs)
}
private func unmap(_ a: UInt64, _ size: UInt64, _ dir: DMADirection = .toDevice, api: MapAPI = .single) -> Event {
    Event(kind: .dmaUnmap, direction: dir, detail: api.rawValue, address: a, size: size)
}
private func sync(_ a: UInt64, _ size: UInt64, _ dir: DMADirection, _ target: SyncTarget) -> Event {
    Event(kind: .dmaSync, direction: dir, detail: target.rawValue, address: a, size: size)
}
private func run(_ events: [Event], fromStart: Bool = false, kernel: String = "6.15.0") throws -> DMADebugReport {
    try DMADebugChecker.run(
        trace(events, kernel: kernel), trace: "traces/case.jsonl",
        options: .init(captureFromStart: fromStart))
}
private func messages(_ r: DMADebugReport) -> [String] { r.violations.map(\.message) }

@Test func cleanStreamHasNoViolations() throws {
    let r = try run([map(0x1000, 512), sync(0x1000, 512, .toDevice, .forDevice), unmap(0x1000, 512)], fromStart: true)
    #expect(r.violations.isEmpty)
    #expect(r.dmaEvents == 3)
    #expect(r.liveAtEnd == 0)
}

@Test func freeNotAllocatedAfterRelease() throws {
    // A double unmap is certain even when the capture started mid-run.
    let r = try run([map(0x1000, 512), unmap(0x1000, 512), unmap(0x1000, 512), unmap(0x9000, 64)])
    #expect(
        messages(r) == [
            "device driver tries to free DMA memory it has not allocated [device address=0x0000000000001000] [size=512 bytes]"
        ])
    #expect(
        r.violations[0].logLine
            == "DMA-API: virtio-pci 0000:00:03.0: device driver tries to free DMA memory it has not allocated [device address=0x0000000000001000] [size=512 bytes]"
    )
    #expect(r.violations[0].at.eventIndex == 2)
    #expect(r.violations[0].at.sourcePosition == 3)
    #expect(r.violations[0].at.sourceFile == "case.jsonl")
    #expect(r.unmatchedBeforeCapture == 1)
    // From the start, the unknown address is a violation too.
    let s = try run([unmap(0x9000, 64)], fromStart: true)
    #expect(
        messages(s) == [
            "device driver tries to free DMA memory it has not allocated [device address=0x0000000000009000] [size=64 bytes]"
        ])
}

@Test func freeInvalidAddress() throws {
    let r = try run([unmap(UInt64.max, 64)])
    #expect(messages(r) == ["device driver tries to free an invalid DMA memory address"])
}

@Test func sizeFunctionDirectionMismatchesAllReported() throws {
    let r = try run([map(0x2000, 4096, .fromDevice, api: .single), unmap(0x2000, 2048, .toDevice, api: .sg)])
    // In check_unmap's order: size, function, direction.
    #expect(
        messages(r) == [
            "device driver frees DMA memory with different size [device address=0x0000000000002000] [map size=4096 bytes] [unmap size=2048 bytes]",
            "device driver frees DMA memory with wrong function [device address=0x0000000000002000] [size=2048 bytes] [mapped as single] [unmapped as scather-gather]",
            "device driver frees DMA memory with different direction [device address=0x0000000000002000] [size=2048 bytes] [mapped with DMA_FROM_DEVICE] [unmapped with DMA_TO_DEVICE]"
        ])
    #expect(r.liveAtEnd == 0)
}

@Test func wrongFunctionUsesEraNames() throws {
    // Linux 4.x distinguishes dma_map_page ("page") from dma_map_single ("single").
    let old = try run([map(0x2000, 66, api: .single), unmap(0x2000, 66, api: .page)], kernel: "4.8.0")
    #expect(
        messages(old) == [
            "device driver frees DMA memory with wrong function [device address=0x0000000000002000] [size=66 bytes] [mapped as single] [unmapped as page]"
        ])
    // 6.x maps both to "single": no violation.
    let new = try run([map(0x2000, 66, api: .single), unmap(0x2000, 66, api: .page)])
    #expect(new.violations.isEmpty)
    // Coherent memory freed with dma_unmap_*.
    let coh = try run(
        [
            Event(
                kind: .dmaAlloc, detail: MapAPI.coherent.rawValue, address: 0x3000, address2: 0xffff_8880_0000_0000,
                size: 4096),
            unmap(0x3000, 4096, .bidirectional)
        ], kernel: "6.19.0")
    #expect(
        messages(coh) == [
            "device driver frees DMA memory with wrong function [device address=0x0000000000003000] [size=4096 bytes] [mapped as coherent] [unmapped as single]"
        ])
}

@Test func coherentFreeWithOtherCPUAddress() throws {
    let r = try run([
        Event(
            kind: .dmaAlloc, detail: MapAPI.coherent.rawValue, address: 0x3000, address2: 0xffff_8880_0000_1000,
            size: 4096),
        Event(
            kind: .dmaFree, detail: MapAPI.coherent.rawValue, address: 0x3000, address2: 0xffff_8880_0000_2000,
            size: 4096)
    ])
    #expect(
        messages(r) == [
            "device driver frees DMA memory with different CPU address [device address=0x0000000000003000] [size=4096 bytes] [cpu alloc address=0xffff888000001000] [cpu free address=0xffff888000002000]"
        ])
}

@Test func mapErrorCheckOnlyWhenTraceRecordsChecks() throws {
    let check = Event(kind: .dmaErrorCheck, address: 0x4000)
    let r = try run([map(0x4000, 64), map(0x5000, 64), check, unmap(0x4000, 64), unmap(0x5000, 64)])
    #expect(
        messages(r) == [
            "device driver failed to check map error[device address=0x0000000000005000] [size=64 bytes] [mapped as single]"
        ])
    #expect(r.checks.first { $0.check == .mapErrorNotChecked }?.ran == true)
    let none = try run([map(0x4000, 64), unmap(0x4000, 64)])
    #expect(none.violations.isEmpty)
    let status = try #require(none.checks.first { $0.check == .mapErrorNotChecked })
    #expect(status.ran == false)
    #expect(status.skippedBecause?.hasPrefix("no dma_mapping_error() calls recorded") == true)
}

@Test func syncRules() throws {
    let r = try run(
        [
            map(0x6000, 4096, .toDevice),
            sync(0x6100, 256, .fromDevice, .forCPU),  // different direction + read-only for cpu
            sync(0x6f00, 512, .toDevice, .forDevice),  // runs past the end: no containing entry
            map(0x8000, 4096, .fromDevice, phys: 0x20_0000),
            sync(0x8000, 64, .fromDevice, .forDevice),  // normal hand-back to the device: fine
            sync(0x8000, 64, .toDevice, .forDevice),  // different direction + write-only memory to device
            map(0xa000, 4096, .bidirectional, phys: 0x30_0000),
            sync(0xa000, 64, .toDevice, .forCPU)  // bidirectional: never checked
        ], fromStart: true)
    #expect(
        messages(r).filter { !$0.contains("still live when the recording stopped") } == [
            "device driver syncs DMA memory with different direction [device address=0x0000000000006100] [size=4096 bytes] [mapped with DMA_TO_DEVICE] [synced with DMA_FROM_DEVICE]",
            "device driver syncs device read-only DMA memory for cpu [device address=0x0000000000006100] [size=4096 bytes] [mapped with DMA_TO_DEVICE] [synced with DMA_FROM_DEVICE]",
            "device driver tries to sync DMA memory it has not allocated [device address=0x0000000000006f00] [size=512 bytes]",
            "device driver syncs DMA memory with different direction [device address=0x0000000000008000] [size=4096 bytes] [mapped with DMA_FROM_DEVICE] [synced with DMA_TO_DEVICE]",
            "device driver syncs device write-only DMA memory to device [device address=0x0000000000008000] [size=4096 bytes] [mapped with DMA_FROM_DEVICE] [synced with DMA_TO_DEVICE]"
        ])
    #expect(r.liveAtEnd == 3)
}

@Test func overlappingCachelines() throws {
    var events = [map(0x1000, 64, .fromDevice, phys: 0x10_0000)]
    events.append(map(0x2000, 64, .fromDevice, phys: 0x10_0020))  // same 64-byte line
    events.append(map(0x3000, 64, .fromDevice, phys: 0x10_0000, attrs: 1 << 5))  // SKIP_CPU_SYNC: allowed
    events.append(map(0x4000, 64, .toDevice, phys: 0x10_0000))  // TO_DEVICE: not tracked
    for i in 0..<6 { events.append(map(0x10000 + UInt64(i) * 0x1000, 64, .bidirectional, phys: 0x10_0000)) }
    let r = try run(events)
    let overlaps = r.violations.filter { $0.check == .cachelineOverlap }
    #expect(overlaps.count == 7)
    #expect(overlaps[0].message == "cacheline tracking EEXIST, overlapping mappings aren't supported")
    #expect(overlaps[0].at.eventIndex == 1)
    let limit = r.violations.filter { $0.check == .cachelineOverlapLimit }
    #expect(limit.map(\.logLine) == ["DMA-API: exceeded 7 overlapping mappings of cacheline 0x0000000000004000"])
    #expect(limit[0].at.eventIndex == 9)
}

@Test func leaksAtEndAndFindings() throws {
    let r = try run([map(0x1000, 100), map(0x2000, 300), map(0x3000, 200), unmap(0x3000, 200)])
    let leaks = r.violations.filter { $0.check == .leakAtEnd }
    #expect(leaks.count == 2)
    #expect(
        leaks[0].message
            == "2 DMA mapping(s) still live when the recording stopped (no driver unbind: a debug kernel prints its leak line only then)\nOne of leaked entries details: [device address=0x0000000000001000] [size=100 bytes] [mapped with DMA_TO_DEVICE] [mapped as single]"
    )
    // The log line stays the kernel's own, the one an unbind would print; the message says what the trace shows.
    #expect(leaks[0].logLine.contains("device driver has pending DMA allocations while released from device [count=2]"))
    #expect(!leaks[0].message.hasPrefix("device driver has pending"))
    let findings = r.findings()
    #expect(findings.count == 1)
    let f = findings[0]
    #expect(f.count == 2)
    #expect(f.key == "leak-at-end")
    #expect(f.severity == .note)
    #expect(f.first?.deviceAddress == 0x1000)
    #expect(f.worst?.deviceAddress == 0x2000)
    #expect(f.trace == "case")
    #expect(
        f.fingerprint
            == Fingerprint.of(
                trace: "case", scenario: "recorded", device: "0000:00:03.0",
                category: "dma-api-debug", key: "leak-at-end", rule: DMADebugCheck.leakAtEnd.rule))
}

@Test func bestFitPicksPerfectMatchAndAmbiguityGivesNone() throws {
    // Two live mappings at the same address: the unmap matching one perfectly removes that one.
    let r = try run(
        [
            map(0x1000, 64, .toDevice), map(0x1000, 128, .fromDevice, phys: 0x20_0000),
            unmap(0x1000, 128, .fromDevice)
        ], fromStart: true)
    #expect(r.violations.filter { $0.check != .leakAtEnd }.isEmpty)
    #expect(r.violations.first { $0.check == .leakAtEnd }?.at.size == 64)
    // No perfect fit among two candidates: debug.c finds nothing and reports "not allocated".
    let s = try run(
        [
            map(0x1000, 64, .toDevice), map(0x1000, 128, .fromDevice, phys: 0x20_0000),
            unmap(0x1000, 256, .toDevice)
        ], fromStart: true)
    #expect(
        messages(s).filter { !$0.contains("still live when the recording stopped") } == [
            "device driver tries to free DMA memory it has not allocated [device address=0x0000000000001000] [size=256 bytes]"
        ])
}

@Test func iommuOnlyTraceSkipsEverything() throws {
    let r = try run([Event(kind: .iommuMap, address: 0xfff57000, address2: 0x4290000, size: 4096)])
    #expect(r.dmaEvents == 0)
    #expect(r.violations.isEmpty)
    #expect(r.checks.count == 24)
    #expect(r.checks.allSatisfy { !$0.ran && $0.skippedBecause != nil })
    #expect(
        r.checks.first { $0.check == .freeNotAllocated }?.skippedBecause?.hasPrefix("the trace has no DMA-API events")
            == true)
}

@Test func syncFindsContainingMappingInLowerHashBucket() throws {
    // A 64 KiB mapping spans eight 8 KiB hash buckets; bucket_find_contain walks back to its start.
    let r = try run(
        [map(0x10000, 0x10000, .toDevice), sync(0x1e000, 0x100, .fromDevice, .forCPU), unmap(0x10000, 0x10000)],
        fromStart: true)
    #expect(
        messages(r) == [
            "device driver syncs DMA memory with different direction [device address=0x000000000001e000] [size=65536 bytes] [mapped with DMA_TO_DEVICE] [synced with DMA_FROM_DEVICE]",
            "device driver syncs device read-only DMA memory for cpu [device address=0x000000000001e000] [size=65536 bytes] [mapped with DMA_TO_DEVICE] [synced with DMA_FROM_DEVICE]"
        ])
    #expect(r.violations[0].mappedAt?.eventIndex == 0)
}

@Test func logLinesFollowTheKernelEra() throws {
    // 4.x put "DMA-API: " inside the message (the dma-api.rst example: "forcedeth 0000:00:08.0: DMA-API: ...").
    let old = try run([map(0x2000, 66, api: .single), unmap(0x2000, 66, api: .page)], kernel: "4.8.0")
    #expect(
        old.violations.map(\.logLine) == [
            "virtio-pci 0000:00:03.0: DMA-API: device driver frees DMA memory with wrong function [device address=0x0000000000002000] [size=66 bytes] [mapped as single] [unmapped as page]"
        ])
    let new = try run([map(0x2000, 66), unmap(0x2000, 99)], kernel: "6.1.0-56-amd64")
    #expect(new.era == .linux6)
    #expect(
        new.violations.map(\.logLine) == [
            "DMA-API: virtio-pci 0000:00:03.0: device driver frees DMA memory with different size [device address=0x0000000000002000] [map size=66 bytes] [unmap size=99 bytes]"
        ])
}

@Test func unmapSGIsMatchedByPhysicalAddress() throws {
    // dma:dma_unmap_sg records the list's physical addresses only (DMA address 0 after import).
    func sgUnmap(_ phys: UInt64, _ dir: DMADirection) -> Event {
        Event(kind: .dmaUnmap, direction: dir, detail: MapAPI.sg.rawValue, address: 0, address2: phys)
    }
    let r = try run(
        [
            map(0xfffe6000, 0x2000, .fromDevice, phys: 0x58c3000, api: .sg),
            map(0xfffe8000, 0x800, .fromDevice, phys: 0x5d16000, api: .sg),
            sgUnmap(0x58c3000, .fromDevice), sgUnmap(0x51cc000, .fromDevice),  // 2nd list entry was merged
            sgUnmap(0x5d16000, .toDevice)
        ], fromStart: true)
    #expect(
        r.violations.map(\.message) == [
            "device driver frees DMA memory with different direction [device address=0x00000000fffe8000] [size=2048 bytes] [mapped with DMA_FROM_DEVICE] [unmapped with DMA_TO_DEVICE]"
        ])
    #expect(r.sgUnmapsWithoutMatch == 1)
    #expect(r.liveAtEnd == 0)
}
