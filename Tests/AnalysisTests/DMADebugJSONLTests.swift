import DMATraceTestSupport
import Testing
import TraceFormat
@testable import Analysis
#if canImport(Glibc)
    import Glibc
#endif

/// Tests/Fixtures/dma-debug/<rule>.jsonl: one small dmatrace JSONL scenario per DMA-API debug rule.
private func fixture(_ name: String) throws -> EventBuffer {
    let path = Repository.file("Tests/Fixtures/dma-debug/\(name).jsonl")
    let f = try #require(fopen(path, "rb"), "missing fixture \(path)")
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n == 0 { break }
        bytes.append(contentsOf: buf[0..<n])
    }
    var buffer = EventBuffer()
    _ = try JSONLCodec.decode(String(decoding: bytes, as: UTF8.self), path: path, into: &buffer)
    return buffer
}

private let a = "[device address=0x00000000fffff000]"

private let expected: [(DMADebugCheck, [String])] = [
    (.freeInvalidAddress, ["device driver tries to free an invalid DMA memory address"]),
    (.freeNotAllocated, ["device driver tries to free DMA memory it has not allocated \(a) [size=512 bytes]"]),
    (
        .freeSize,
        ["device driver frees DMA memory with different size \(a) [map size=4096 bytes] [unmap size=2048 bytes]"]
    ),
    (
        .freeFunction,
        [
            "device driver frees DMA memory with wrong function [device address=0x00000000ffffe000] [size=8192 bytes] [mapped as coherent] [unmapped as single]"
        ]
    ),
    (
        .freeCPUAddress,
        [
            "device driver frees DMA memory with different CPU address [device address=0x00000000ffffe000] [size=8192 bytes] [cpu alloc address=0xffff888004000000] [cpu free address=0xffff888004002000]"
        ]
    ),
    (
        .freeDirection,
        [
            "device driver frees DMA memory with different direction \(a) [size=1500 bytes] [mapped with DMA_FROM_DEVICE] [unmapped with DMA_TO_DEVICE]"
        ]
    ),
    (
        .mapErrorNotChecked,
        [
            "device driver failed to check map error[device address=0x00000000ffffe000] [size=16 bytes] [mapped as single]"
        ]
    ),
    (.syncNotAllocated, ["device driver tries to sync DMA memory it has not allocated \(a) [size=512 bytes]"]),
    (
        .syncDirection,
        [
            "device driver syncs DMA memory with different direction \(a) [size=4096 bytes] [mapped with DMA_FROM_DEVICE] [synced with DMA_BIDIRECTIONAL]"
        ]
    ),
    (
        .syncReadOnlyForCPU,
        [
            "device driver syncs DMA memory with different direction [device address=0x00000000fffff100] [size=4096 bytes] [mapped with DMA_TO_DEVICE] [synced with DMA_FROM_DEVICE]",
            "device driver syncs device read-only DMA memory for cpu [device address=0x00000000fffff100] [size=4096 bytes] [mapped with DMA_TO_DEVICE] [synced with DMA_FROM_DEVICE]"
        ]
    ),
    (
        .syncWriteOnlyToDevice,
        [
            "device driver syncs DMA memory with different direction \(a) [size=4096 bytes] [mapped with DMA_FROM_DEVICE] [synced with DMA_TO_DEVICE]",
            "device driver syncs device write-only DMA memory to device \(a) [size=4096 bytes] [mapped with DMA_FROM_DEVICE] [synced with DMA_TO_DEVICE]"
        ]
    ),
    (.cachelineOverlap, ["cacheline tracking EEXIST, overlapping mappings aren't supported"]),
    (
        .cachelineOverlapLimit,
        Array(repeating: "cacheline tracking EEXIST, overlapping mappings aren't supported", count: 7)
            + [
                "exceeded 7 overlapping mappings of cacheline 0x0000000000004000",
                "cacheline tracking EEXIST, overlapping mappings aren't supported"
            ]
    ),
    (
        .leakAtEnd,
        Array(
            repeating:
                "2 DMA mapping(s) still live when the recording stopped (no driver unbind: a debug kernel prints its leak line only then)\nOne of leaked entries details: \(a) [size=512 bytes] [mapped with DMA_TO_DEVICE] [mapped as single]",
            count: 2)
    )
]

@Test(arguments: expected.map(\.0))
func eachRuleFiresOnItsJSONLScenario(check: DMADebugCheck) throws {
    let messages = try #require(expected.first { $0.0 == check }?.1)
    let trace = try fixture(check.rawValue)
    let r = try DMADebugChecker.run(trace, trace: "\(check.rawValue).jsonl")
    #expect(r.violations.map(\.message) == messages)
    #expect(r.checks.first { $0.check == check }?.violations ?? 0 >= 1)
    #expect(r.violations.allSatisfy { $0.logLine.hasPrefix("DMA-API: ") })
    if check != .cachelineOverlapLimit {
        #expect(r.violations.allSatisfy { $0.logLine.hasPrefix("DMA-API: virtio-pci 0000:00:04.0: ") })
    }
}
