import Replay

/// The checks of CONFIG_DMA_API_DEBUG (linux v6.19 kernel/dma/debug.c, in the order of its checks; the same
/// strings in v6.1, v4.8 lib/dma-debug.c), plus the end-of-capture leak report. Raw values are stable ids used in finding keys, SARIF rule ids and schemas.
public enum DMADebugCheck: String, Sendable, Codable, CaseIterable {
    case freeInvalidAddress = "free-invalid-address"
    case freeNotAllocated = "free-not-allocated"
    case freeSize = "free-size-mismatch"
    case freeFunction = "free-wrong-function"
    case freeCPUAddress = "free-cpu-address-mismatch"
    case freeSGCount = "free-sg-count-mismatch"
    case freeDirection = "free-direction-mismatch"
    case mapErrorNotChecked = "map-error-not-checked"
    case mapStack = "map-stack"
    case mapKernelText = "map-kernel-text"
    case mapInvalidArea = "map-invalid-area"
    case mapVmalloc = "map-vmalloc"
    case syncNotAllocated = "sync-not-allocated"
    case syncOutside = "sync-outside-range"
    case syncDirection = "sync-direction-mismatch"
    case syncReadOnlyForCPU = "sync-read-only-for-cpu"
    case syncWriteOnlyToDevice = "sync-write-only-to-device"
    case syncSGCount = "sync-sg-count-mismatch"
    case sgSegmentTooLong = "sg-segment-too-long"
    case sgSegmentBoundary = "sg-segment-boundary"
    case cachelineOverlap = "cacheline-overlap"
    case cachelineOverlapLimit = "cacheline-overlap-limit"
    case leakAtEnd = "leak-at-end"
    case cpuTouchingMapping = "cpu-touching-mapping"

    /// The check's number in `dmatrace analyze` output (the order above; the leak report is 23, debug.c's unbind check).
    public var number: Int {
        switch self {
        case .freeInvalidAddress: 1
        case .freeNotAllocated: 2
        case .freeSize: 3
        case .freeFunction: 4
        case .freeCPUAddress: 5
        case .freeSGCount: 6
        case .freeDirection: 7
        case .mapErrorNotChecked: 8
        case .mapStack: 9
        case .mapKernelText: 10
        case .mapInvalidArea: 11
        case .mapVmalloc: 12
        case .syncNotAllocated: 13
        case .syncOutside: 14
        case .syncDirection: 15
        case .syncReadOnlyForCPU: 16
        case .syncWriteOnlyToDevice: 17
        case .syncSGCount: 18
        case .sgSegmentTooLong: 19
        case .sgSegmentBoundary: 20
        case .cachelineOverlap: 21
        case .cachelineOverlapLimit: 22
        case .leakAtEnd: 23
        case .cpuTouchingMapping: 24
        }
    }

    /// The debug.c function that implements the check in the kernel.
    public var kernelFunction: String {
        switch self {
        case .freeInvalidAddress, .freeNotAllocated, .freeSize, .freeFunction, .freeCPUAddress, .freeSGCount,
            .freeDirection, .mapErrorNotChecked:
            "check_unmap"
        case .mapStack, .mapKernelText: "check_for_stack/check_for_illegal_area"
        case .mapInvalidArea, .mapVmalloc: "debug_dma_map_single"
        case .syncNotAllocated, .syncOutside, .syncDirection, .syncReadOnlyForCPU, .syncWriteOnlyToDevice,
            .syncSGCount:
            "check_sync"
        case .sgSegmentTooLong, .sgSegmentBoundary: "check_sg_segment"
        case .cachelineOverlap: "add_dma_entry"
        case .cachelineOverlapLimit: "active_cacheline_inc_overlap"
        case .leakAtEnd: "dma_debug_device_change"
        case .cpuTouchingMapping: "debug_dma_assert_idle"
        }
    }

    /// Severity of a violation of this check.
    public var severity: FindingSeverity {
        switch self {
        case .leakAtEnd: .note
        case .cachelineOverlap, .cachelineOverlapLimit, .mapErrorNotChecked: .warning
        default: .error
        }
    }

    /// The citation used as the finding's rule.
    public var rule: String {
        "dma-api-debug/\(rawValue): Linux v6.19 kernel/dma/debug.c \(kernelFunction)() (CONFIG_DMA_API_DEBUG check #\(number))"
    }
}

/// One violation, exactly as the kernel would have reported it.
public struct DMADebugViolation: Sendable, Codable, Equatable {
    /// Which check.
    public var check: DMADebugCheck
    /// Device name, `-` when unknown.
    public var device: String
    /// The kernel's message without prefix (`device driver tries to free DMA memory it has not allocated [...]`).
    public var message: String
    /// The full dmesg line body: `DMA-API: <driver> <device>: <message>`.
    public var logLine: String
    /// The event that triggered it.
    public var at: Occurrence
    /// Where the matching mapping was made, when one was found.
    public var mappedAt: Occurrence?
}

/// Whether a check ran on this trace, and why not.
public struct DMADebugCheckStatus: Sendable, Codable, Equatable {
    public var check: DMADebugCheck
    /// True when the trace has the data the check needs.
    public var ran: Bool
    /// Why the check could not run (nil when it ran).
    public var skippedBecause: String?
    /// Violations found by it.
    public var violations: Int
}

/// The result of `dmatrace analyze`'s DMA-API debug pass over one trace.
public struct DMADebugReport: Sendable, Codable, Equatable {
    /// Trace name.
    public var trace: String
    /// Message naming era used.
    public var era: DMADebugChecker.Era
    /// Whether unknown addresses were treated as violations (see ``DMADebugChecker/Options/captureFromStart``).
    public var captureFromStart: Bool
    /// DMA-API events seen.
    public var dmaEvents: Int
    /// Every check, in table order, ran or skipped.
    public var checks: [DMADebugCheckStatus]
    /// Every violation, in trace order.
    public var violations: [DMADebugViolation]
    /// Unmaps, frees and syncs of addresses never seen mapped, not reported because the mapping may predate
    /// the capture.
    public var unmatchedBeforeCapture: Int
    /// `dma_unmap_sg` list entries (recorded by CPU physical address only) that matched no live
    /// scatter-gather segment: entries merged into a previous segment by dma_map_sg, or mapped before the
    /// capture. Never reported as violations.
    public var sgUnmapsWithoutMatch: Int
    /// Mappings still live at the end of the capture.
    public var liveAtEnd: Int

    /// Violations grouped into findings per (device, check), with count, first and worst (largest size).
    public func findings() -> [Finding] {
        let name = Fingerprint.traceName(trace)
        var groups: [String: [DMADebugViolation]] = [:]
        for v in violations { groups["\(v.device)\u{0}\(v.check.rawValue)", default: []].append(v) }
        var out: [Finding] = []
        for key in groups.keys.sorted() {
            let list = groups[key]!
            let first = list[0]
            var worst = first
            for v in list where v.at.size > worst.at.size { worst = v }
            let c = first.check
            out.append(
                Finding(
                    trace: name, scenario: "recorded", device: first.device, category: "dma-api-debug", key: c.rawValue,
                    rule: c.rule, origin: .dmaDebug, severity: c.severity, count: list.count, first: first.at,
                    worst: worst.at == first.at ? nil : worst.at,
                    message: first.message.split(separator: "\n").first.map(String.init) ?? first.message,
                    explanation: "CONFIG_DMA_API_DEBUG check #\(c.number) (\(c.rawValue)) of Linux kernel/dma/debug.c "
                        + "\(c.kernelFunction)(), re-run offline on the recorded DMA-API calls; a debug kernel would WARN "
                        + "on the first occurrence only, this report lists all \(list.count).",
                    guestLog: Array(Set(list.prefix(3).map(\.logLine))).sorted()
                        .flatMap { $0.split(separator: "\n").map(String.init) }, hostLog: []))
        }
        return out.sorted(by: Finding.reportOrder)
    }
}
