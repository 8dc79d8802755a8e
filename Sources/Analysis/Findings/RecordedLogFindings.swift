import Replay
import TraceFormat

/// Findings the recorded guest log states by itself, whatever the scenario: a `swiotlb_full` event is a
/// mapping that failed because the software IO TLB had no room (kernel/dma/swiotlb.c
/// swiotlb_tbl_map_single(), lib/swiotlb.c before 5.0). One finding per device, with the count, the first
/// occurrence and the largest size asked for.
public struct RecordedLogFindings: Sendable {
    private struct Hit: Sendable {
        var index: Int
        var event: Event
    }

    private var swiotlbFull: [UInt16: [Hit]] = [:]
    private var order: [UInt16] = []

    public init() {}

    /// Sees one event of the trace (index in file order).
    public mutating func consume(index: Int, _ e: Event) {
        guard e.kind == .swiotlbFull else { return }
        if swiotlbFull[e.device] == nil { order.append(e.device) }
        swiotlbFull[e.device, default: []].append(Hit(index: index, event: e))
    }

    /// The findings, for the trace at `trace` with `metadata`.
    public func findings(trace: String, metadata: TraceMetadata) -> [Finding] {
        let name = Fingerprint.traceName(trace)
        var out: [Finding] = []
        for dev in order {
            guard let hits = swiotlbFull[dev], let first = hits.first else { continue }
            let device =
                dev == Event.noDevice || Int(dev) >= metadata.devices.count ? "-" : metadata.devices[Int(dev)].name
            var worst = first
            for h in hits where h.event.size > worst.event.size { worst = h }
            func occurrence(_ h: Hit) -> Occurrence {
                let src = Int(h.event.source) < metadata.inputs.count ? metadata.inputs[Int(h.event.source)].path : nil
                return Occurrence(
                    eventIndex: h.index, timestamp: h.event.timestamp, sourceFile: src,
                    sourcePosition: src == nil ? nil : h.event.position, deviceAddress: 0, bufferAddress: nil,
                    size: h.event.size, write: false, reason: nil)
            }
            func logLine(_ e: Event) -> String {
                var s = "\(device == "-" ? "" : device + ": ")swiotlb buffer is full (sz: \(e.size) bytes)"
                if e.aux != 0 { s += ", total \(e.aux) (slots), used \(e.aux2) (slots)" }
                return s
            }
            let more = hits.count == 1 ? "" : " (\(hits.count) times, largest \(worst.event.size) bytes)"
            let slots = first.event.aux != 0 ? ", \(first.event.aux2) of \(first.event.aux) slots in use" : ""
            out.append(
                Finding(
                    trace: name, scenario: "recorded", device: device, category: "swiotlb-full", key: "swiotlb-full",
                    rule: "kernel/dma/swiotlb.c swiotlb_tbl_map_single() (lib/swiotlb.c before 5.0)", origin: .guestLog,
                    severity: .error, count: hits.count, first: occurrence(first),
                    worst: worst.index == first.index ? nil : occurrence(worst),
                    message:
                        "\(device): the swiotlb bounce buffer was full, a DMA mapping of \(first.event.size) bytes failed\(slots)\(more)",
                    explanation:
                        "The guest kernel had to bounce this device's DMA through the software IO TLB (swiotlb=force, "
                        + "no IOMMU for a device with a small DMA mask, or a confidential guest) and found no free slots: the "
                        + "mapping failed and the driver saw DMA_MAPPING_ERROR. Enlarge the pool (swiotlb=N), or look for "
                        + "mappings the driver never unmaps.",
                    guestLog: Array(Set(hits.prefix(3).map { logLine($0.event) })).sorted(), hostLog: []))
        }
        return out.sorted(by: Finding.reportOrder)
    }
}
