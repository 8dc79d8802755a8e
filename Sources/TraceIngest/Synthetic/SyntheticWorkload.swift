import TraceFormat

/// A deterministic, realistic synthetic workload (for `dmatrace synth`, benchmarks and scale tests):
/// virtio-blk and virtio-net devices behind a translating vIOMMU, as a Linux ≥ 6.12 guest with `dma:*` and
/// `iommu:*` tracing and a QEMU with `vtd_*` tracing would record them.
///
/// Per block request: header (16 B, TO_DEVICE), data (4–64 KiB, either direction) and status (1 B,
/// FROM_DEVICE) mapped, each followed by the driver's `dma_mapping_error()` check, translated by the device,
/// then unmapped in completion order. Net RX uses premapped 32 KiB chunks unmapped with SKIP_CPU_SYNC; TX maps
/// a header and a payload. IOVAs come from a Linux-like allocator: top-down below 4 GiB, freed ranges reused
/// first. Optional planted bugs let the analyzer be checked at scale. Memory is bounded by the number of
/// requests in flight, never by the number of events.
public struct SyntheticWorkload: Sendable {
    /// Bugs that can be planted, each with the rule it should trigger.
    public enum Bug: String, Sendable, CaseIterable, Codable {
        /// A buffer unmapped twice (DMA-API debug: freeing memory it has not allocated).
        case doubleUnmap = "double-unmap"
        /// The device touches a buffer after its unmap (VT-d fault 0x06/0x05 under strict).
        case useAfterUnmap = "use-after-unmap"
        /// The device DMAs to an address that was never mapped.
        case strayDMA = "stray-dma"
        /// A streaming mapping whose `dma_mapping_error()` check is missing.
        case missingErrorCheck = "missing-error-check"
    }

    /// Generator parameters.
    public struct Options: Sendable {
        /// Total events to produce. Generation stops submitting when the in-flight requests' completions would
        /// reach it, so the result lands within one request (≤ 16 events) of this number.
        public var events: Int
        /// Seed of the deterministic generator.
        public var seed: UInt64
        /// virtio-blk devices.
        public var blockDevices: Int
        /// virtio-net devices.
        public var netDevices: Int
        /// Emit host-side (`vtd_dmar_translate`-like) translations for every device access.
        public var hostTranslations: Bool
        /// Emit guest `iommu:map`/`iommu:unmap` alongside `dma:*`.
        public var iommuEvents: Bool
        /// Requests kept in flight per device (bounds the live state).
        public var queueDepth: Int
        /// Planted bugs and how often (one in `bugEvery` requests, per bug kind).
        public var bugs: [Bug]
        public var bugEvery: Int

        public init(
            events: Int, seed: UInt64 = 1, blockDevices: Int = 2, netDevices: Int = 1,
            hostTranslations: Bool = true, iommuEvents: Bool = false, queueDepth: Int = 32,
            bugs: [Bug] = [], bugEvery: Int = 10_000
        ) {
            self.events = events
            self.seed = seed
            self.blockDevices = blockDevices
            self.netDevices = netDevices
            self.hostTranslations = hostTranslations
            self.iommuEvents = iommuEvents
            self.queueDepth = queueDepth
            self.bugs = bugs
            self.bugEvery = max(1, bugEvery)
        }
    }

    /// What a generation produced.
    public struct Summary: Sendable, Equatable {
        public var events: Int = 0
        public var requests: Int = 0
        /// Planted bugs per kind.
        public var planted: [Bug: Int] = [:]
    }

    public let options: Options

    public init(options: Options) { self.options = options }

    /// Generates the workload into `sink`. Deterministic: the same options give the same events.
    public func generate(into sink: inout some EventSink) throws -> Summary {
        var g = Generator(options: options)
        try g.run(into: &sink)
        return g.summary
    }
}

/// Linux-like IOVA allocation for one domain on one CPU, as Linux v6.1 `alloc_iova_fast()` does it
/// (drivers/iommu/iova.c): sizes below 32 pages rounded up to a power of two, freed ranges of up to 32 pages (orders below IOVA_RANGE_CACHE_MAX_SIZE) reused
/// last-in first-out (the per-CPU range cache), otherwise top-down from just below 4 GiB, aligned to the size's
/// power of two (`__alloc_and_insert_iova_range(..., size_aligned)`). The replay's allocator check predicts these.
struct SyntheticIOVAAllocator {
    private var next: UInt64 = 0x1_0000_0000
    private var freed: [UInt64: [UInt64]] = [:]  // pages → stack of IOVAs

    mutating func allocate(pages requested: UInt64) -> UInt64 {
        let pages = Self.order(requested)
        if pages <= 32, var stack = freed[pages], let iova = stack.popLast() {
            freed[pages] = stack
            return iova
        }
        let bytes = pages << 12
        let align = Self.alignment(pages) << 12
        next = (next - bytes) & ~(align - 1)
        return next
    }

    mutating func free(_ iova: UInt64, pages: UInt64) {
        let p = Self.order(pages)
        if p <= 32 { freed[p, default: []].append(iova) }
    }

    /// Pages taken: rounded up to a power of two below 32 pages (`roundup_pow_of_two`), as requested above.
    static func order(_ pages: UInt64) -> UInt64 {
        let p = max(1, pages)
        return p < 32 ? (p <= 1 ? 1 : 1 << (64 - (p - 1).leadingZeroBitCount)) : p
    }

    /// The alignment (pages) of a top-down allocation: `fls_long(size - 1)`.
    static func alignment(_ pages: UInt64) -> UInt64 { pages <= 1 ? 1 : 1 << (64 - (pages - 1).leadingZeroBitCount) }
}

private struct Generator {
    struct Buffer {
        var iova: UInt64
        var phys: UInt64
        var size: UInt64
        var dir: DMADirection
        var api: MapAPI
        var attrs: UInt32
    }
    struct Request {
        var device: Int
        var buffers: [Buffer]
    }

    let options: SyntheticWorkload.Options
    var rng: SplitMix64
    var summary = SyntheticWorkload.Summary()
    var now: UInt64 = 1_000_000_000
    var devices: [UInt16] = []
    var sids: [UInt16] = []
    var allocators: [SyntheticIOVAAllocator] = []
    var inflight: [[Request]] = []
    /// Events still to come from completing every request in flight (flush + unmaps).
    var drainCost = 0

    init(options: SyntheticWorkload.Options) {
        self.options = options
        self.rng = SplitMix64(seed: options.seed)
    }

    mutating func tick() -> UInt64 {
        now &+= 200 &+ UInt64(rng.below(2_000))
        return now
    }

    mutating func physPage() -> UInt64 {
        // Pages scattered over 2 GiB of guest RAM, as a page allocator hands them out.
        0x100_0000 &+ (UInt64(rng.below(1 << 19)) << 12)
    }

    mutating func emit(_ e: Event, into sink: inout some EventSink) throws {
        try sink.append(e)
        summary.events += 1
    }

    mutating func run(into sink: inout some EventSink) throws {
        sink.metadata.capture.kernelRelease = sink.metadata.capture.kernelRelease ?? "6.12.0-synthetic"
        sink.metadata.capture.qemuVersion = sink.metadata.capture.qemuVersion ?? "9.2.0"
        sink.metadata.capture.viommu = "intel-iommu"
        sink.metadata.capture.guestIOMMU = .translated
        sink.metadata.capture.flushPolicy = .strict
        sink.metadata.clocks = [ClockDomain(id: 0, name: "synthetic")]
        let total = options.blockDevices + options.netDevices
        for i in 0..<total {
            let isBlock = i < options.blockDevices
            let slot = 2 + i
            let info = DeviceInfo(
                name: "0000:00:\(Hex.digits(slot, width: 2)).0",
                sid: UInt16(slot << 3), vendorID: 0x1AF4, deviceID: isBlock ? 0x1042 : 0x1041,
                virtioType: isBlock ? "block" : "net", transport: .modern, iommuPlatform: true,
                featuresOffered: (1 << 32) | (1 << 33), featuresAcked: (1 << 32) | (1 << 33),
                iommuGroup: i, driver: isBlock ? "virtio_blk" : "virtio_net", behindIOMMU: true)
            devices.append(sink.device(info))
            sids.append(UInt16(slot << 3))
            allocators.append(SyntheticIOVAAllocator())
            inflight.append([])
        }
        // Rings: one coherent allocation per queue (vring_size(256, 64) = 6726 bytes).
        for d in 0..<total {
            for _ in 0..<(d < options.blockDevices ? 1 : 2) {
                let iova = allocators[d].allocate(pages: 2)
                let e = Event(
                    kind: .dmaAlloc, timestamp: tick(), device: devices[d], direction: .bidirectional,
                    detail: MapAPI.coherent.rawValue, address: iova, address2: 0xFFFF_8880_0000_0000 | physPage(),
                    size: 6726, aux: 0xCC0)
                try emit(e, into: &sink)
            }
        }
        while summary.events < options.events {
            let d = rng.below(total)
            let full = inflight[d].count >= options.queueDepth
            let budgetSpent = summary.events + drainCost >= options.events
            if budgetSpent && drainCost == 0 { break }
            if full || budgetSpent || (inflight[d].count > 0 && rng.below(3) == 0) {
                try complete(device: d, into: &sink)
            } else {
                try submit(device: d, into: &sink)
            }
        }
        for d in 0..<total { while !inflight[d].isEmpty { try complete(device: d, into: &sink) } }
    }

    mutating func plant(_ bug: SyntheticWorkload.Bug) -> Bool {
        guard options.bugs.contains(bug), rng.below(options.bugEvery) == 0 else { return false }
        summary.planted[bug, default: 0] += 1
        return true
    }

    mutating func map(
        device d: Int, size: UInt64, dir: DMADirection, attrs: UInt32 = 0, into sink: inout some EventSink
    ) throws -> Buffer {
        let phys = physPage() | (size < 4096 ? UInt64(rng.below(64)) << 6 : 0)
        // iommu_dma_map_page(): the IOVA covers the buffer's offset in its page too (iova_align(size + offset)).
        let pages = PageSpan(address: phys, size: size).count
        let iovaBase = allocators[d].allocate(pages: pages)
        let buf = Buffer(iova: iovaBase | (phys & 0xFFF), phys: phys, size: size, dir: dir, api: .page, attrs: attrs)
        if options.iommuEvents {
            try emit(
                Event(
                    kind: .iommuMap, timestamp: tick(), device: devices[d], flags: .attributed,
                    address: iovaBase, address2: phys & ~0xFFF, size: pages << 12), into: &sink)
        }
        try emit(
            Event(
                kind: .dmaMap, timestamp: tick(), device: devices[d], direction: dir, detail: MapAPI.page.rawValue,
                address: buf.iova, address2: phys, size: size, aux: attrs), into: &sink)
        if !plant(.missingErrorCheck) {
            try emit(Event(kind: .dmaErrorCheck, timestamp: tick(), device: devices[d], address: buf.iova), into: &sink)
        }
        return buf
    }

    mutating func access(_ b: Buffer, device d: Int, into sink: inout some EventSink) throws {
        guard options.hostTranslations else { return }
        let write = b.dir == .fromDevice
        let perms: Permissions = b.dir == .toDevice ? .read : (b.dir == .fromDevice ? .write : [.read, .write])
        try emit(
            Event(
                kind: .hostTranslate, timestamp: tick(), device: devices[d], flags: write ? .write : [],
                detail: perms.rawValue, address: b.iova & ~0xFFF, address2: b.phys & ~0xFFF, size: 4096,
                aux: UInt32(d + 1)), into: &sink)
    }

    mutating func submit(device d: Int, into sink: inout some EventSink) throws {
        var bufs: [Buffer] = []
        if d < options.blockDevices {
            bufs.append(try map(device: d, size: 16, dir: .toDevice, into: &sink))
            let data = UInt64(1 + rng.below(16)) << 12
            bufs.append(try map(device: d, size: data, dir: rng.below(2) == 0 ? .toDevice : .fromDevice, into: &sink))
            bufs.append(try map(device: d, size: 1, dir: .fromDevice, into: &sink))
        } else if rng.below(2) == 0 {
            // RX, SKIP_CPU_SYNC
            bufs.append(try map(device: d, size: 32768, dir: .fromDevice, attrs: 1 << 5, into: &sink))
        } else {
            bufs.append(try map(device: d, size: 12, dir: .toDevice, into: &sink))
            bufs.append(try map(device: d, size: UInt64(64 + rng.below(1400)), dir: .toDevice, into: &sink))
        }
        try emit(
            Event(kind: .virtqueueNotify, timestamp: tick(), device: devices[d], aux: d < options.blockDevices ? 0 : 1),
            into: &sink)
        for b in bufs { try access(b, device: d, into: &sink) }
        if plant(.strayDMA) {
            let stray: UInt64 = 0x1000_0000 &+ (UInt64(rng.below(1 << 16)) << 12)
            try emit(
                Event(
                    kind: .hostFault, timestamp: tick(), device: devices[d], flags: .write,
                    detail: FaultSource.vtd.rawValue, address: stray, aux: 0x05), into: &sink)
        }
        inflight[d].append(Request(device: d, buffers: bufs))
        drainCost += completionCost(bufs.count)
        summary.requests += 1
    }

    mutating func complete(device d: Int, into sink: inout some EventSink) throws {
        guard !inflight[d].isEmpty else { return }
        let req = inflight[d].removeFirst()
        drainCost -= completionCost(req.buffers.count)
        try emit(Event(kind: .virtqueueFlush, timestamp: tick(), device: devices[d], aux: 0, aux2: 1), into: &sink)
        for b in req.buffers {
            try unmap(b, device: d, into: &sink)
            if plant(.doubleUnmap) { try unmap(b, device: d, into: &sink, free: false) }
            if plant(.useAfterUnmap) {
                try emit(
                    Event(
                        kind: .hostFault, timestamp: tick(), device: devices[d],
                        flags: b.dir == .fromDevice ? .write : [], detail: FaultSource.vtd.rawValue,
                        address: b.iova & ~0xFFF, aux: b.dir == .fromDevice ? 0x05 : 0x06), into: &sink)
            }
        }
    }

    func completionCost(_ buffers: Int) -> Int { 1 + buffers * (options.iommuEvents ? 2 : 1) }

    mutating func unmap(_ b: Buffer, device d: Int, into sink: inout some EventSink, free: Bool = true) throws {
        let pages = PageSpan(address: b.iova, size: b.size).count
        try emit(
            Event(
                kind: .dmaUnmap, timestamp: tick(), device: devices[d], direction: b.dir, detail: b.api.rawValue,
                address: b.iova, size: b.size, aux: b.attrs), into: &sink)
        if options.iommuEvents && free {
            try emit(
                Event(
                    kind: .iommuUnmap, timestamp: tick(), device: devices[d], flags: .attributed,
                    address: b.iova & ~0xFFF, address2: pages << 12, size: pages << 12), into: &sink)
        }
        if free { allocators[d].free(b.iova & ~0xFFF, pages: pages) }
    }
}
