import Foundation
import Models
import TraceFormat

/// Oopses and panics a kernel model's `oopses` say its code reaches, predicted from the recorded DMA-API events:
///
/// - `unmap-after-failed-map`: a non-virtio driver's mapping fails (global intel dma_ops, device outside every
///   DRHD) and a driver that ignores `dma_mapping_error()` later unmaps the handle: `intel_unmap()`'s
///   `BUG_ON(!domain)` (4.8–5.7). The occurrence is the failed map (the recorded `dma_map` event); the oops
///   fires at that buffer's `dma_unmap`. A driver that checks the error never unmaps, so the prediction holds
///   for drivers that do not check.
/// - `bounce-does-not-fit`: swiotlb bounces the mapping (`swiotlb=force` on the recorded command line, or a
///   confidential guest) and no run of free slots can hold it: a single mapping above `IO_TLB_SEGSIZE` slots
///   (128 × 2 KiB = 256 KiB). Kernels up to 4.19 panic in `swiotlb_full()` when the mapping is larger than
///   `io_tlb_overflow` (32 KiB, the model's `minBytes`); later kernels return a mapping error. Pool
///   exhaustion by many live bounces is not modelled (the pool's occupancy is not tracked).
enum OopsPrediction {
    /// Console lines with `{bdf}`, `{dev}`, `{driver}`, `{size}` and `{direction}` filled in.
    static func console(_ o: KernelModel.Oops, device d: DeviceFacts, size: UInt64, direction: DMADirection) -> [String]
    {
        let dir: String
        switch direction {
        case .bidirectional: dir = "accessed"
        case .fromDevice: dir = "written"
        case .toDevice: dir = "read"
        default: dir = "accessed"
        }
        return o.console.map {
            $0.replacingOccurrences(of: "{bdf}", with: d.name)
                .replacingOccurrences(of: "{dev}", with: d.shortBDF)
                .replacingOccurrences(of: "{driver}", with: d.driverName)
                .replacingOccurrences(of: "{size}", with: String(size))
                .replacingOccurrences(of: "{direction}", with: dir)
        }
    }

    /// The explanation of an `oops` group: the model's function, releases, condition and source.
    static func explanation(_ g: GroupAcc, plan: DevicePlan) -> String {
        guard let o = plan.oopses.first(where: { $0.trigger.rawValue == g.tag.name }) else {
            return "The kernel oopses on this path."
        }
        let range = "\(o.releases.from)-\(o.releases.to ?? "")"
        return "\(o.function) (Linux \(range)) oopses: \(o.condition). Source: \(o.source)."
    }

    static let bounceFailureText =
        "swiotlb found no run of free slots for this mapping (larger than IO_TLB_SEGSIZE, 128 slots of 2 KiB): the DMA API returned a mapping error and the driver never submitted the buffer."
}

extension ScenarioState {
    /// Largest single swiotlb bounce: IO_TLB_SEGSIZE (128) slots of 1 << IO_TLB_SHIFT (2 KiB).
    static let bounceSegmentBytes: UInt64 = 128 * 2048

    /// A bounce that cannot fit: the kernel's panic when its model has one for this size, else a mapping error.
    mutating func bounceDoesNotFit(buffer b: Buffer, index: Int, time: UInt64) {
        let args = OccurrenceArgs(
            index: index, event: nil, time: time, deviceAddress: 0, buffer: b.gpa, size: b.size,
            write: false, reason: nil)
        if let o = plans[b.device].oopses.first(where: {
            $0.trigger == .bounceDoesNotFit && b.size >= UInt64($0.minBytes ?? 0)
        }) {
            recordOops(o, buffer: b, tag: .bounceDoesNotFit, at: args)
        } else {
            record(
                .mappingFailed, device: b.device, reason: nil, write: false, stray: false, tag: .bounceDoesNotFit,
                size: b.size, at: args)
        }
    }

    /// A mapping error of a device whose kernel oopses when the driver unmaps the failed handle.
    mutating func failedMapOops(buffer b: Buffer, index: Int, time: UInt64) {
        guard let o = plans[b.device].oopses.first(where: { $0.trigger == .unmapAfterFailedMap }) else { return }
        recordOops(
            o, buffer: b, tag: .unmapAfterFailedMap,
            at: OccurrenceArgs(
                index: index, event: nil, time: time, deviceAddress: 0, buffer: b.gpa, size: b.size,
                write: false, reason: nil))
    }

    private mutating func recordOops(_ o: KernelModel.Oops, buffer b: Buffer, tag: Tag, at args: OccurrenceArgs) {
        let g = record(
            .oops, device: b.device, reason: nil, write: false, stray: false, tag: tag, size: b.size, at: args)
        if groups[g.0][g.1].guestLog.isEmpty {
            groups[g.0][g.1].guestLog = OopsPrediction.console(
                o, device: facts[b.device], size: b.size, direction: b.direction)
        }
    }
}
