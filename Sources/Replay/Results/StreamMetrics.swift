import TraceFormat

/// What a replay predicts a device's DMA stream looks like (or what a trace recorded), in the quantities the
/// cross-validation compares (docs/replay.md, traces/README.md): maps and unmaps of IOMMU mappings, translations by
/// the vIOMMU, faults by reason and page, swiotlb bounces, the IOVA sequence; invalidations are per trace.
public struct StreamMetrics: Sendable, Codable, Equatable {
    public struct Device: Sendable, Codable, Equatable {
        public var maps = 0
        public var unmaps = 0
        public var translations = 0
        /// `0x6@0x1000000` -> faulting accesses.
        public var faults: [String: Int] = [:]
        public var bounces = 0
        /// The first ``StreamMetrics/maxIOVAs`` IOVAs (page) handed to the device, in order.
        public var iovas: [UInt64] = []

        public init() {}
    }

    /// By device name.
    public var devices: [String: Device] = [:]
    /// IOTLB invalidations (page-selective under strict, flush-queue flushes under lazy).
    public var invalidations = 0

    public init() {}

    public static let maxIOVAs = 64

    static func faultKey(reason: UInt32, page: UInt64) -> String { "\(Hex.prefixed(reason))@\(Hex.prefixed(page))" }
}

/// Per-device counters a scenario keeps when ``ReplayOptions/collectStream`` is set.
struct StreamCollector: Sendable {
    var devices: [StreamMetrics.Device]
    var invalidations = 0

    init(devices n: Int) { devices = Array(repeating: StreamMetrics.Device(), count: n) }

    mutating func fault(device d: Int, reason: UInt32, address: UInt64) {
        let k = StreamMetrics.faultKey(reason: reason, page: address & ~0xFFF)
        if devices[d].faults[k] != nil || devices[d].faults.count < 256 { devices[d].faults[k, default: 0] += 1 }
    }

    func metrics(names: [String]) -> StreamMetrics {
        var m = StreamMetrics()
        m.invalidations = invalidations
        for (i, d) in devices.enumerated() where i < names.count && d != StreamMetrics.Device() {
            m.devices[names[i]] = d
        }
        return m
    }
}

extension StreamMetrics {
    /// What a trace recorded: the guest's IOMMU maps and unmaps, the host's translations, faults and IOTLB
    /// invalidations, the guest's swiotlb bounces.
    public static func recorded(_ source: some EventSource) throws -> StreamMetrics {
        let names = source.metadata.devices.map(\.name)
        var c = StreamCollector(devices: names.count)
        try source.forEachEvent { _, e in
            if e.kind == .hostInvalidate {
                // Page ranges, domain-wide and global IOTLB invalidations (context-cache ones are not IOTLB).
                if [1, 2, 3, 7].contains(e.aux2) { c.invalidations += 1 }
                return
            }
            guard e.hasDevice, Int(e.device) < names.count else { return }
            let d = Int(e.device)
            switch e.kind {
            case .iommuMap:
                c.devices[d].maps += 1
                if c.devices[d].iovas.count < maxIOVAs { c.devices[d].iovas.append(e.address & ~0xFFF) }
            case .iommuUnmap: c.devices[d].unmaps += 1
            // Linux 5.3–5.10 intel-iommu maps DMA-API buffers in its own dma_ops without `iommu:map`; its
            // `intel_iommu:map_single`/`map_sg`/`bounce_map_single` tracepoints are the IOMMU mappings
            // (drivers/iommu/intel/iommu.c and include/trace/events/intel_iommu.h at v5.10).
            case .dmaMap where MapAPI(rawValue: e.detail)?.isIOMMUDriverMap == true:
                c.devices[d].maps += 1
                if c.devices[d].iovas.count < maxIOVAs { c.devices[d].iovas.append(e.address & ~0xFFF) }
            case .dmaUnmap where MapAPI(rawValue: e.detail)?.isIOMMUDriverMap == true: c.devices[d].unmaps += 1
            case .hostTranslate: c.devices[d].translations += 1
            case .hostFault: c.fault(device: d, reason: e.aux, address: e.address)
            case .swiotlbBounce: c.devices[d].bounces += 1
            default: break
            }
        }
        return c.metrics(names: names)
    }
}
