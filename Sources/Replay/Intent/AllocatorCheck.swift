import Models
import TraceFormat

/// The IOVA allocator check of the recorded scenario: every recorded `iommu_map` of a translated
/// DMA domain is predicted by ``IOVAAllocator`` (Linux's per-CPU range caches, 32-bit-first, top-down tree)
/// fed the recorded history of that domain (allocations on the mapping CPU, frees on the unmapping CPU, or
/// through the flush queue under lazy invalidation), and the predicted IOVA is compared with the recorded one.
/// A difference is a divergence naming the event; the model then follows the recording (claims the recorded
/// range), so one wrong prediction is counted once.
///
/// **Allocations.** One DMA-API call allocates one IOVA range but may trace several `iommu_map` events (one per
/// physically contiguous run of a scatterlist or of a non-contiguous coherent buffer: `__iommu_map_sg()` of
/// Linux v6.1 `drivers/iommu/iommu.c`), in ascending IOVA order on one CPU. A map that continues the device's
/// previous one is taken as the next segment of the same allocation unless the previous segments, as an
/// allocation of their own, are already what the allocator predicts (then it is a new allocation: successive
/// range-cache hits can be adjacent too).
///
/// **Flush queue (lazy).** Linux v6.1 `drivers/iommu/dma-iommu.c` `queue_iova()` puts the range in the unmapping
/// CPU's ring (IOVA_FQ_SIZE = 256 slots, so 255 entries: `fq_full()` keeps one slot free; a full ring flushes the IOTLB and frees the ring's flushed entries
/// on that CPU) and arms the domain's timer (`fq_timer`, IOVA_FQ_TIMEOUT = 10 ms) if it is off;
/// `fq_flush_timeout()` flushes and frees every CPU's ring on the CPU the timer runs on (the arming CPU). The
/// trace does not record when the timer ran (jiffies, and under TCG timer interrupts run late: a drain 15 ms
/// after arming is seen in `traces/raw/intel-lazy`), so each allocation at least IOVA_FQ_TIMEOUT after arming is
/// checked against "the timer has not run yet" and "it ran just before this allocation"; a range reused before
/// the timeout, or not reused when both hypotheses say it must be, is a divergence.
struct AllocatorCheck {
    struct Finding {
        var what: String
        var device: Int
        var index: Int
        var event: Event
    }

    private struct Group {
        var device: Int
        var domain: Int
        var startPfn: UInt64
        var pages: UInt64
        /// The CPU the event records, or 0 when ``cpuRecorded`` is false (then each hypothesis's ``DomainState/cpu``).
        var cpu: Int
        var cpuRecorded: Bool
        var index: Int
        var event: Event
        var time: UInt64
    }

    private struct QueueEntry: Equatable {
        var pfn: UInt64
        var pages: UInt64
        var time: UInt64
        var flushed: Bool
    }

    private struct DomainState: Equatable {
        var allocator: IOVAAllocator
        var rings: [[QueueEntry]] = []
        var armedAt: UInt64?
        var timerCPU = 0
        /// The CPU this hypothesis runs unrecorded allocations and frees on: the last allocation's (an allocation
        /// may move to another CPU, at ``AllocatorCheck/cpuSwitchCostNs``; a free stays on it).
        var cpu = 0
        /// How implausible the timer history behind this state is (``AllocatorCheck/cost(of:at:)``); not part of
        /// the state: two histories that leave the same state are one hypothesis, the likelier one kept.
        var cost: UInt64 = 0

        static func == (a: DomainState, b: DomainState) -> Bool {
            a.armedAt == b.armedAt && a.timerCPU == b.timerCPU && a.cpu == b.cpu && a.rings == b.rings
                && a.allocator == b.allocator
        }
    }

    let lazy: Bool
    let flushTimeoutNs: UInt64
    /// How much earlier than IOVA_FQ_TIMEOUT the timer may run: `mod_timer(jiffies + msecs_to_jiffies(10))`
    /// expires up to one jiffy early relative to the arming moment (4 ms at Debian's CONFIG_HZ=250: 8-12 ms).
    let timerSlackNs: UInt64 = 4_000_000
    /// How many CPUs the guest had: the metadata's count, raised by any higher CPU an event records
    /// (``noteCPU(_:)``); the flush-queue timer may run on any of them.
    private var cpusSeen: Int
    /// The latest the flush-queue timer is taken to run after arming (TCG delivers timer interrupts late).
    let maxTimerDelayNs: UInt64 = 100_000_000
    let ringSize: Int
    let addressWidth: Int
    let below4GFirst: Bool
    let cache: KernelModel.IOVACache
    let domainOf: [Int]
    /// The hypotheses per domain (by domain index; nil: nothing allocated yet).
    private var domains: [[DomainState]?]
    /// The open allocation of each device (by device index), and how many are open.
    private var pending: [Group?]
    private var pendingCount = 0
    /// The domain of each device's open allocation (-1: none): what ``closeAll(domain:)`` scans, without
    /// reading (copying) the groups themselves on every map and unmap.
    private var pendingDomain: [Int]
    /// Pages of each recorded allocation still mapped, by (device, first pfn): an ``AddressTable`` (a
    /// `Dictionary` here was ~8% of a one-scenario replay, hashing), with the rare count that does not fit its
    /// 32-bit values in `liveLarge`. A reference: the check is never copied and then changed (only read).
    private let live = AddressTable(capacity: 64)
    private var liveLarge: [UInt64: UInt64] = [:]
    /// Recorded allocations compared with the allocator's prediction.
    private(set) var checked = 0
    /// Allocations of each device in order (recorded IOVA, predicted IOVA), for `validate`.
    private(set) var findings: [Finding] = []
    private(set) var divergenceCount = 0
    /// Maps whose device is unknown (not checked; the domain's later predictions may suffer).
    private(set) var skipped = 0
    /// Maps that named no device, checked in the one domain whose allocator predicts them
    /// (``mapUnattributed(iova:size:cpu:time:index:event:)``).
    private(set) var placedUnattributed = 0
    /// Where each placed device-less allocation went, by first pfn (device index): for its device-less unmap.
    private var unattributedLive: [UInt64: Int] = [:]
    /// The device of the last map on each CPU (by CPU; -1 none): breaks a tie between domains that all predict a
    /// device-less map.
    private var lastDeviceOnCPU: [Int] = []
    /// Maps ingest attributed to one device whose IOVA only another device's domain predicts (moved there).
    private(set) var reattributed = 0
    /// The last ``map(device:iova:size:cpu:time:index:event:)`` continued the device's open allocation (another
    /// segment of one DMA-API call): the scenarios place it in the same IOVA range.
    private(set) var lastMapExtended = false
    private var moved: [UInt64: Int] = [:]
    /// Devices with a recorded map so far (by device index).
    private var devicesSeen: [Bool]
    /// The highest pfn each device's DMA mask allows, inferred from its IOVAs (0: its mask is not below the
    /// address width). A trace records no DMA mask; a device limited to fewer than 32 bits (a 28-bit mask:
    /// `dma_set_mask(dev, DMA_BIT_MASK(28))`) gets IOVAs below that limit, which no 64-bit device would.
    private var dmaLimit: [UInt64]
    /// The DMA masks inferred, in bits, by device index.
    private(set) var inferredMaskBits: [Int: Int] = [:]
    static let maxFindings = 1000

    init(
        lazy: Bool, flushTimeoutMs: Int, flushEntries: Int, addressWidth: Int, below4GFirst: Bool,
        cache: KernelModel.IOVACache = .upTo6_6, cpus: Int = 1, hypotheses: Int = AllocatorCheck.defaultHypotheses,
        domainOf: [Int]
    ) {
        self.cache = cache
        maxHypotheses = max(1, hypotheses)
        cpusSeen = max(1, min(cpus, 8192))
        self.lazy = lazy
        flushTimeoutNs = UInt64(max(0, flushTimeoutMs)) * 1_000_000
        // fq_full(): `((tail + 1) % IOVA_FQ_SIZE) == head`, a ring of IOVA_FQ_SIZE slots holds one entry less.
        ringSize = max(1, flushEntries - 1)
        self.addressWidth = addressWidth
        self.below4GFirst = below4GFirst
        self.domainOf = domainOf
        // One more slot than devices: the open allocation of maps that name no device (``unknownSlot``).
        pending = Array(repeating: nil, count: domainOf.count + 1)
        pendingDomain = Array(repeating: -1, count: domainOf.count + 1)
        devicesSeen = Array(repeating: false, count: domainOf.count)
        dmaLimit = Array(repeating: 0, count: domainOf.count)
        domains = Array(repeating: nil, count: (domainOf.max() ?? -1) + 1)
    }

    /// An event recorded CPU `cpu` (any device's `iommu_map`, or one of no device): the guest has at least
    /// `cpu + 1` CPUs.
    mutating func noteCPU(_ cpu: Int) {
        if cpu >= cpusSeen && cpu < 8192 { cpusSeen = cpu + 1 }
    }

    private static func key(_ d: Int, _ pfn: UInt64) -> UInt64 {
        UInt64(truncatingIfNeeded: d) << 48 | (pfn & 0xFFFF_FFFF_FFFF)
    }

    /// `live[key] = pages`.
    private mutating func setLive(_ key: UInt64, _ pages: UInt64) {
        if pages < UInt64(UInt32.max) {
            if live.get(key) == UInt32.max { liveLarge[key] = nil }
            live.set(key, UInt32(pages))
        } else {
            live.set(key, UInt32.max)
            liveLarge[key] = pages
        }
    }

    /// `live.removeValue(forKey: key)`.
    private mutating func removeLive(_ key: UInt64) -> UInt64? {
        guard let v = live.get(key) else { return nil }
        live.remove(key, ifValue: v)
        return v == UInt32.max ? liveLarge.removeValue(forKey: key) : UInt64(v)
    }

    /// The hypotheses about domain `domain` still consistent with the recording (one unless the flush-queue
    /// timer's moment or CPU is open).
    private func states(_ domain: Int) -> [DomainState] {
        domains[domain] ?? [
            DomainState(allocator: IOVAAllocator(addressWidth: addressWidth, below4GFirst: below4GFirst, cache: cache))
        ]
    }

    /// The hypotheses of `domain`, taken out of the table (so that changing them copies nothing); put them back.
    private mutating func takeStates(_ domain: Int) -> [DomainState] {
        var list: [DomainState]? = nil
        swap(&list, &domains[domain])
        return list ?? states(domain)
    }

    /// A recorded `iommu_map` of device `d`; returns ``lastMapExtended`` (so that a caller holding the check in an
    /// optional need not copy it out to read that).
    @discardableResult
    mutating func map(
        device d: Int, iova: UInt64, size: UInt64, cpu recordedCPU: Int?, time: UInt64, index: Int, event: Event
    ) -> Bool {
        let cpu = recordedCPU ?? 0
        noteCPU(cpu)
        guard d < domainOf.count else {
            skipped += 1
            return lastMapExtended  // unchanged
        }
        let domain = domainOf[d]
        devicesSeen[d] = true
        let pfn = iova >> 12
        let pages = max(1, PageSpan(address: iova, size: size).count)
        lastMapExtended = false
        if cpu < 8192 {
            if cpu >= lastDeviceOnCPU.count {
                lastDeviceOnCPU += Array(repeating: -1, count: cpu + 1 - lastDeviceOnCPU.count)
            }
            lastDeviceOnCPU[cpu] = d
        }
        if pendingCount > 0, let u = pending[unknownSlot] {
            // This domain's open allocations came before the device-less one (which ended those on its CPU).
            closeAll(domain: domain)
            var g = u
            g.device = d
            g.domain = domain
            if u.startPfn &+ u.pages == pfn, u.cpu == cpu, time &- u.time <= Self.segmentGapNs,
                successors(of: g, limit: 1).isEmpty
            {
                // The open device-less map is this DMA-API call's first segment (`__iommu_map_sg()` maps in
                // ascending IOVA order): one allocation of this device, from the device-less map's IOVA.
                _ = takePending(unknownSlot)
                g.pages &+= pages
                pendingCount += 1
                pendingDomain[d] = domain
                pending[d] = g
                return false
            }
            commit(takePending(unknownSlot)!)
        }
        if var g = pending[d], g.startPfn &+ g.pages == pfn, g.cpu == cpu {
            if successors(of: g, limit: 1).isEmpty {
                g.pages &+= pages
                pending[d] = g
                lastMapExtended = true
                return true
            }
        }
        // The next segment of another device's open allocation, both given their devices by inference: one
        // DMA-API call maps for one device, so it joins that allocation (the allocator then decides, at the
        // commit, which device's domain it is: `__iommu_map_sg()` traces a non-contiguous coherent buffer as
        // several maps at once, and ingest may vote them to different devices when two domains use the same IOVAs).
        if event.eventFlags.contains(.attributed), pendingCount > 0 {
            for o in 0..<unknownSlot where o != d {
                guard var g = pending[o], g.startPfn &+ g.pages == pfn, g.cpu == cpu,
                    g.event.eventFlags.contains(.attributed), time &- g.time <= Self.segmentGapNs,
                    successors(of: g, limit: 1).isEmpty
                else { continue }
                g.pages &+= pages
                pending[o] = g
                moved[Self.key(d, pfn)] = o
                return false
            }
            // A map that continues no open allocation of another device on its CPU ends those allocations (the
            // DMA-API call that made them returned): checked now, before this domain allocates again.
            for o in 0..<unknownSlot where o != d && pendingDomain[o] != domain {
                if let g = pending[o], g.cpu == cpu, g.event.eventFlags.contains(.attributed) {
                    commit(takePending(o)!)
                }
            }
        }
        closeAll(domain: domain)
        if pending[d] == nil { pendingCount += 1 }
        pendingDomain[d] = domain
        pending[d] = Group(
            device: d, domain: domain, startPfn: pfn, pages: pages, cpu: cpu, cpuRecorded: recordedCPU != nil,
            index: index, event: event, time: time)
        return false
    }

    /// How far apart in time two maps of one DMA-API call can be (segments are mapped in one loop).
    static let segmentGapNs: UInt64 = 100_000

    /// The ``pending`` slot of the open allocation of maps that name no device.
    private var unknownSlot: Int { domainOf.count }

    /// A recorded `iommu_map` that names no device (ingest could not attribute it: no DMA-API event, host
    /// translation or adjacent map told whose it was). Its IOVA was allocated from some domain all the same, and
    /// left out, that domain's model would take the range for free and predict it for a later allocation (a fresh
    /// intel-strict boot of 2026-12-07 diverged 7 times after one such map). Like a map of a known device it
    /// opens an allocation that later segments of the same DMA-API call extend, or extends one (it may be any
    /// segment of a scatterlist or of a non-contiguous coherent buffer); at its commit it goes to the one domain
    /// whose allocator predicts its IOVA, or, when several do, to the domain of the device that mapped last on its
    /// CPU among them (one task maps for one device at a time). When none does it is not checked (``skipped``):
    /// no domain can be blamed.
    mutating func mapUnattributed(
        iova: UInt64, size: UInt64, cpu recordedCPU: Int?, time: UInt64, index: Int, event: Event
    ) {
        // A direct mapping (IOVA = physical address): `iommu_create_device_direct_mappings()` maps a reserved region
        // (RMRR, ISA range) 1:1 without the IOVA allocator (drivers/iommu/iommu.c, v6.1).
        guard iova != event.address2 else { return }
        let cpu = recordedCPU ?? 0
        noteCPU(cpu)
        let pfn = iova >> 12
        let pages = max(1, PageSpan(address: iova, size: size).count)
        lastMapExtended = false
        let u = unknownSlot
        if var g = pending[u] {
            if g.startPfn &+ g.pages == pfn, g.cpu == cpu, time &- g.time <= Self.segmentGapNs, !predictedAnywhere(g) {
                g.pages &+= pages
                pending[u] = g
                return
            }
            commit(takePending(u)!)
        }
        // A later segment of a known device's open allocation.
        if pendingCount > 0 {
            for o in 0..<u {
                guard var g = pending[o], g.startPfn &+ g.pages == pfn, g.cpu == cpu,
                    time &- g.time <= Self.segmentGapNs,
                    successors(of: g, limit: 1).isEmpty
                else { continue }
                g.pages &+= pages
                pending[o] = g
                return
            }
            // It continues no open allocation on its CPU: the DMA-API calls that made those returned.
            for o in 0..<u where pending[o]?.cpu == cpu { commit(takePending(o)!) }
        }
        pendingCount += 1
        pending[u] = Group(
            device: u, domain: -1, startPfn: pfn, pages: pages, cpu: cpu, cpuRecorded: recordedCPU != nil,
            index: index, event: event, time: time)
    }

    /// A recorded `iommu_unmap` that names no device: frees a device-less map placed in a domain.
    mutating func unmapUnattributed(iova: UInt64, cpu recordedCPU: Int?, time: UInt64) {
        if pendingCount > 0, pending[unknownSlot] != nil { commit(takePending(unknownSlot)!) }
        guard let d = unattributedLive.removeValue(forKey: iova >> 12) else { return }
        unmap(device: d, iova: iova, cpu: recordedCPU, time: time)
    }

    /// The devices whose domains could have allocated device-less `g` (one per domain, the CPU's last device's
    /// first), each with the states that give its IOVA.
    private mutating func placements(of g: Group, limit: Int) -> [(device: Int, states: [DomainState])] {
        var order: [Int] = []
        if g.cpu < lastDeviceOnCPU.count, lastDeviceOnCPU[g.cpu] >= 0 { order.append(lastDeviceOnCPU[g.cpu]) }
        for d in devicesSeen.indices where devicesSeen[d] && !order.contains(where: { domainOf[$0] == domainOf[d] }) {
            order.append(d)
        }
        var out: [(device: Int, states: [DomainState])] = []
        for d in order {
            var h = g
            h.device = d
            h.domain = domainOf[d]
            let next = successors(of: h, limit: limit)
            if !next.isEmpty { out.append((d, next)) }
        }
        return out
    }

    /// Some domain's allocator predicts device-less `g` as an allocation of its own.
    private mutating func predictedAnywhere(_ g: Group) -> Bool {
        !placements(of: g, limit: 1).isEmpty
    }

    private mutating func commitUnattributed(_ g: Group) {
        let found = placements(of: g, limit: maxHypotheses)
        guard let (d, next) = found.first else {
            skipped += 1
            return
        }
        // Several domains predict it: the CPU's last device's (listed first) when it is one of them; otherwise
        // nothing tells them apart.
        if found.count > 1 && !(g.cpu < lastDeviceOnCPU.count && lastDeviceOnCPU[g.cpu] == d) {
            skipped += 1
            return
        }
        checked += 1
        placedUnattributed += 1
        domains[domainOf[d]] = next
        setLive(Self.key(d, g.startPfn), g.pages)
        unattributedLive[g.startPfn] = d
    }

    /// A recorded `iommu_unmap` (or DMA-API unmap) of device `d`; `cpu` nil when the event records none.
    mutating func unmap(device d0: Int, iova: UInt64, cpu recordedCPU: Int?, time: UInt64) {
        guard d0 < domainOf.count else { return }
        let cpu = recordedCPU ?? 0
        let pfn = iova >> 12
        // An open device-less allocation came before this unmap: placed first, so that an unmap of it finds it.
        if pendingCount > 0, pending[unknownSlot] != nil { commit(takePending(unknownSlot)!) }
        // An unmap names no domain either: follow a map the allocator moved to another device.
        var d = d0
        if live.get(Self.key(d, pfn)) == nil, let m = moved.removeValue(forKey: Self.key(d, pfn)) { d = m }
        if !unattributedLive.isEmpty, let m = unattributedLive[pfn], m == d || live.get(Self.key(d, pfn)) == nil {
            // A device-less map placed in `m`'s domain, unmapped by a device ingest (or a host translation) named.
            unattributedLive[pfn] = nil
            d = m
        }
        let domain = domainOf[d]
        noteCPU(cpu)
        closeAll(domain: domain)
        guard let pages = removeLive(Self.key(d, pfn)) else { return }
        // In place: the hypotheses leave the table while they change, so no copy of an allocator is made
        // (copying a DomainState and mutating it copied its magazines: most of a replay's time).
        var list = takeStates(domain)
        for k in list.indices {
            let c = recordedCPU ?? list[k].cpu
            if lazy {
                queue(&list[k], pfn: pfn, pages: pages, cpu: c, time: time)
            } else {
                list[k].allocator.free(pfn: pfn, pages: pages, cpu: c)
            }
        }
        domains[domain] = list
    }

    private mutating func takePending(_ d: Int) -> Group? {
        guard let g = pending[d] else { return nil }
        pending[d] = nil
        pendingDomain[d] = -1
        pendingCount -= 1
        return g
    }

    /// End of the trace: the last open allocations are checked.
    mutating func finish() {
        for d in pending.indices { if let g = takePending(d) { commit(g) } }
    }

    private mutating func closeAll(domain: Int) {
        guard pendingCount > 0 else { return }
        for d in pendingDomain.indices where pendingDomain[d] == domain {
            commit(takePending(d)!)
        }
    }

    /// The states after allocating `g` that give its recorded IOVA, from every hypothesis and flush-queue
    /// candidate, likeliest first (distinct, at most `limit`). The candidates are ranked before any is simulated,
    /// so the search stops at the `limit` likeliest that fit the recording.
    private mutating func successors(of g: Group, limit: Int) -> [DomainState] {
        let hypotheses = states(g.domain)
        var moves: [(cost: UInt64, order: Int, hypothesis: Int, move: TimerMove, allocCPU: Int)] = []
        for (k, h) in hypotheses.enumerated() {
            for (j, m) in candidates(from: h, for: g).enumerated() {
                guard !g.cpuRecorded else {
                    moves.append((m.cost, j, k, m, g.cpu))
                    continue
                }
                // An allocation whose CPU is not recorded: on the hypothesis's CPU, or (less likely) another whose
                // caches hold a range of this size, or one whose caches do not (all such CPUs give the same IOVA).
                for c in Self.distinctCPUs(first: h.cpu, count: cpusSeen, { h.allocator.hasCached(g.pages, cpu: $0) }) {
                    moves.append((m.cost &+ (c == h.cpu ? 0 : Self.cpuSwitchCostNs), j, k, m, c))
                }
            }
        }
        // Among equally likely moves, each hypothesis's first moves (not run yet, run just now) before any
        // hypothesis's later ones, so that one hypothesis's many cut points do not crowd out the others.
        let ranked = moves.sorted { ($0.cost, $0.order, $0.hypothesis) < ($1.cost, $1.order, $1.hypothesis) }
        var out: [DomainState] = []
        for m in ranked {
            var c = hypotheses[m.hypothesis]
            apply(m.move, to: &c)
            if !g.cpuRecorded && m.allocCPU != c.cpu {
                c.cost &+= Self.cpuSwitchCostNs
                c.cpu = m.allocCPU
            }
            guard
                c.allocator.allocatePages(g.pages, cpu: m.allocCPU, dmaLimitPfn: maskLimit(g.device))?.pfn == g.startPfn
            else { continue }
            if !out.contains(c) { out.append(c) }
            if out.count >= limit { return out }
        }
        return out
    }

    /// The hypotheses kept per domain (the beam of the search): ``defaultHypotheses`` unless the replay searches
    /// again with a wider beam (``ReplayOptions/allocatorSearch``).
    let maxHypotheses: Int
    /// The first search's beam: enough for every bundled capture but three (docs/replay.md).
    static let defaultHypotheses = 96

    /// The narrowest DMA mask inferred (ISA-era devices have 24 bits).
    static let minMaskBits = 24

    private func maskLimit(_ device: Int) -> UInt64? {
        let l = dmaLimit[device]
        return l == 0 ? nil : l
    }

    /// An allocation whose CPU is not recorded running on another CPU than the hypothesis's last one costs as much
    /// as this much timer lateness (a task migrates rarely; most runs of a workload stay on one CPU).
    static let cpuSwitchCostNs: UInt64 = 10_000_000

    private mutating func commit(_ g0: Group) {
        if g0.device == unknownSlot { return commitUnattributed(g0) }
        checked += 1
        // Fast path (one hypothesis, no flush-queue timer question): allocate in place, no copy of the state.
        // (The hypotheses leave the table while they are looked at: reading them in place would copy them.)
        var list = takeStates(g0.domain)
        if list.count == 1 && (!lazy || list[0].armedAt == nil) {
            let cpu = g0.cpuRecorded ? g0.cpu : list[0].cpu
            let r = list[0].allocator.allocatePages(g0.pages, cpu: cpu, dmaLimitPfn: maskLimit(g0.device))
            if r?.pfn == g0.startPfn {
                domains[g0.domain] = list
                setLive(Self.key(g0.device, g0.startPfn), g0.pages)
                return
            }
            // Wrong: give the prediction back (not an exact undo: after a divergence the check follows the
            // recording) and fall through to the reattribution and divergence path.
            if let r { list[0].allocator.free(pfn: r.pfn, pages: r.pages, cpu: cpu) }
        }
        domains[g0.domain] = list
        var g = g0
        var next = successors(of: g, limit: maxHypotheses)
        if next.isEmpty && g.event.eventFlags.contains(.attributed) {
            // Ingest attributed this map by inference (an iommu:map names no device); when exactly one other
            // device's domain predicts the recorded IOVA, the allocator is the better evidence.
            var found: [(Group, [DomainState])] = []
            for other in devicesSeen.indices
            where devicesSeen[other] && other != g.device && domainOf[other] != g.domain {
                var h = g
                h.device = other
                h.domain = domainOf[other]
                let n = successors(of: h, limit: maxHypotheses)
                if !n.isEmpty && !found.contains(where: { $0.0.domain == h.domain }) { found.append((h, n)) }
            }
            if found.count == 1 {
                moved[Self.key(g.device, g.startPfn)] = found[0].0.device
                g = found[0].0
                next = found[0].1
                reattributed += 1
            }
        }
        if next.isEmpty && dmaLimit[g.device] == 0 && g.startPfn < IOVAAllocator.dma32Pfn {
            // A device whose DMA mask is below 32 bits: the largest mask that explains the IOVA (a wider one would
            // have been tried first by the driver), kept for the device's later allocations.
            for bits in stride(from: 31, through: Self.minMaskBits, by: -1) {
                let top = (UInt64(1) << UInt64(bits - 12)) - 1
                guard g.startPfn &+ g.pages &- 1 <= top else { break }
                dmaLimit[g.device] = top
                next = successors(of: g, limit: maxHypotheses)
                if !next.isEmpty {
                    inferredMaskBits[g.device] = bits
                    break
                }
                dmaLimit[g.device] = 0
            }
        }
        setLive(Self.key(g.device, g.startPfn), g.pages)
        if !next.isEmpty {
            domains[g.domain] = next
            return
        }
        var st = states(g.domain)[0]
        var probe = st
        let prediction = probe.allocator.allocatePages(
            g.pages, cpu: g.cpuRecorded ? g.cpu : st.cpu, dmaLimitPfn: maskLimit(g.device))
        let predicted = prediction.map { Hex.prefixed($0.pfn << 12) } ?? "no IOVA (space exhausted)"
        divergenceCount += 1
        if findings.count < Self.maxFindings {
            let cpuNote = g.cpuRecorded ? "on CPU \(g.cpu)" : "(CPU not recorded)"
            findings.append(
                Finding(
                    what:
                        "IOVA allocator: predicted \(predicted) for \(g.pages) page(s) \(cpuNote), recorded \(Hex.prefixed(g.startPfn << 12))",
                    device: g.device, index: g.index, event: g.event))
        }
        st.allocator.claim(pfn: g.startPfn, pages: IOVAAllocator.roundedPages(g.pages))
        // The same wrong prediction twice (no other wrong one between): the real domain does not hand that range
        // out (a map of it was given to another device at ingest, or it sits in a cache the model does not know),
        // so it is taken too; otherwise every later allocation of the domain would be predicted there and diverge.
        if let p = prediction, lastWrong[g.domain] == p.pfn, p.pfn != g.startPfn {
            st.allocator.claim(pfn: p.pfn, pages: p.pages)
            lastWrong[g.domain] = nil
        } else {
            lastWrong[g.domain] = prediction?.pfn
        }
        domains[g.domain] = [st]
    }

    /// The last wrong prediction of each domain (by domain index).
    private var lastWrong: [Int: UInt64] = [:]

    /// What may have happened to the flush-queue timer before an allocation: nothing (`cut` nil), or it ran on
    /// `cpu` just before `cut` (entries queued earlier are freed); `cost` is the resulting state's ``cost(of:at:)``.
    private struct TimerMove {
        var cut: UInt64?
        var cpu: Int
        var cost: UInt64
        /// A second run before the allocation, on `cpu2` just before `cut2`: the entries the first run left re-armed
        /// the timer early enough for it to run again.
        var cut2: UInt64? = nil
        var cpu2 = 0
    }

    /// How implausible a hypothesis is at `time`, in nanoseconds of timer lateness: each run of the timer later
    /// than IOVA_FQ_TIMEOUT plus ``timerSlackNs`` after arming adds its lateness (a timer interrupt that late is
    /// rare even under TCG), one run on another CPU than the arming one adds ``otherCPUCostNs`` (only when the
    /// arming CPU was idle), and a timer armed and not yet run counts as late as it already is.
    private func cost(of st: DomainState, at time: UInt64) -> UInt64 {
        guard let armed = st.armedAt else { return st.cost }
        let latest = armed &+ flushTimeoutNs &+ timerSlackNs
        return st.cost &+ (time > latest ? time &- latest : 0)
    }

    /// A timer run on another CPU than the arming one costs as much as this much lateness.
    static let otherCPUCostNs: UInt64 = 20_000_000

    /// The moves an allocation of `g` may meet from hypothesis `st`: as is, and (lazy) with the flush-queue timer
    /// run at some moment before it, no earlier than IOVA_FQ_TIMEOUT (less ``timerSlackNs``) after it was armed:
    /// each cut point between two queued entries (newest first, at most ``maxCutPoints``) gives one candidate,
    /// since entries queued before the timer ran are freed and later ones wait for its next run. The entries a run
    /// leaves re-arm the timer on their CPU, so between two allocations of a quiet domain it may have run twice
    /// (linux5.10-amd-viommu: CPU 0's entries freed on CPU 0, then CPU 1's one on CPU 1, before CPU 1 allocated it).
    private func candidates(from st: DomainState, for g: Group) -> [TimerMove] {
        guard lazy, let armed = st.armedAt, g.time &+ timerSlackNs >= armed &+ flushTimeoutNs else {
            return [TimerMove(cut: nil, cpu: st.timerCPU, cost: cost(of: st, at: g.time))]
        }
        let earliest = armed &+ flushTimeoutNs &- min(flushTimeoutNs, timerSlackNs)
        let latest = armed &+ flushTimeoutNs &+ timerSlackNs
        var cuts = Set<UInt64>()
        for ring in st.rings { for e in ring where e.time >= earliest && e.time < g.time { cuts.insert(e.time &+ 1) } }
        cuts.insert(earliest)
        var out: [TimerMove] = []
        var ordered = [g.time]
        ordered += cuts.sorted(by: >).filter { $0 < g.time }.prefix(Self.maxCutPoints)
        // The timer runs on the arming CPU unless that CPU was idle (an unmap from an interrupt on an idle CPU:
        // `get_nohz_timer_target()` then picks a busy one): the arming CPU first, then the others.
        let cpus = timerCPUs(st, allocating: g.cpu)
        /// What a run at `cut` on `cpu` of a timer armed on `arming` and due by `latest` adds to the cost.
        func runCost(_ cut: UInt64, latest: UInt64, _ cpu: Int, arming: Int) -> UInt64 {
            (cut > latest ? cut &- latest : 0) &+ (cpu == arming ? 0 : Self.otherCPUCostNs)
        }
        for cut in ordered {
            // The same state arises from any run between the previous entry and `cut`: the earliest is the likeliest.
            for cpu in cpus {
                out.append(
                    TimerMove(
                        cut: cut, cpu: cpu, cost: st.cost &+ runCost(cut, latest: latest, cpu, arming: st.timerCPU)))
            }
        }
        // Two runs: the oldest entry the first run leaves re-arms the timer on its CPU, and it runs again before the
        // allocation (at the earliest, or just before it) if IOVA_FQ_TIMEOUT allows.
        for cut in ordered {
            var next: (time: UInt64, cpu: Int)?
            for (r, ring) in st.rings.enumerated() {
                if let e = ring.first(where: { !$0.flushed && $0.time >= cut }), next.map({ e.time < $0.time }) ?? true
                {
                    next = (e.time, r)
                }
            }
            guard let (armed2, armCPU) = next else { continue }
            let earliest2 = armed2 &+ flushTimeoutNs &- min(flushTimeoutNs, timerSlackNs)
            guard earliest2 < g.time else { continue }
            let latest2 = armed2 &+ flushTimeoutNs &+ timerSlackNs
            for cut2 in Set([max(earliest2, cut &+ 1), g.time]).sorted() where cut2 > cut && cut2 <= g.time {
                for cpu in cpus {
                    for cpu2 in [armCPU] + cpus.filter({ $0 != armCPU }) {
                        let cost =
                            st.cost &+ runCost(cut, latest: latest, cpu, arming: st.timerCPU)
                            &+ runCost(cut2, latest: latest2, cpu2, arming: armCPU)
                        out.append(TimerMove(cut: cut, cpu: cpu, cost: cost, cut2: cut2, cpu2: cpu2))
                    }
                }
            }
        }
        // Not yet run: the likelier the nearer the allocation is to the arming (8-12 ms at CONFIG_HZ=250; under
        // TCG timer interrupts come late, so it stays a hypothesis until ``maxTimerDelayNs``).
        if g.time < armed &+ maxTimerDelayNs {
            out.insert(TimerMove(cut: nil, cpu: st.timerCPU, cost: cost(of: st, at: g.time)), at: 0)
        }
        return out
    }

    /// The CPUs a timer run may be placed on (``distinctCPUs(first:count:_:)``): the arming CPU, each CPU that holds
    /// queued entries or cached ranges or allocates now, and one standing for the others (a run on any of them frees
    /// into caches that hold nothing yet).
    private func timerCPUs(_ st: DomainState, allocating: Int) -> [Int] {
        Self.distinctCPUs(first: st.timerCPU, count: max(cpusSeen, st.rings.count)) { c in
            c == allocating || (c < st.rings.count && !st.rings[c].isEmpty) || st.allocator.holdsCached(cpu: c)
        }
    }

    /// `first`, then in order every other CPU below `count` that `tellsApart`, then the first of the rest, which
    /// stands for them all (they are alike but for their number), so that a guest of many CPUs does not multiply
    /// the candidates.
    static func distinctCPUs(first: Int, count: Int, _ tellsApart: (Int) -> Bool) -> [Int] {
        var out = [first]
        var standIn: Int?
        for c in 0..<count where c != first {
            if tellsApart(c) {
                out.append(c)
            } else if standIn == nil {
                standIn = c
            }
        }
        if let c = standIn { out.append(c) }
        return out
    }

    private func apply(_ m: TimerMove, to st: inout DomainState) {
        guard let cut = m.cut else { return }
        st.timerCPU = m.cpu
        fire(&st, before: cut)
        if let cut2 = m.cut2 {
            st.timerCPU = m.cpu2
            fire(&st, before: cut2)
        }
        st.cost = m.cost
    }

    static let maxCutPoints = 32

    /// `queue_iova()`.
    private mutating func queue(_ st: inout DomainState, pfn: UInt64, pages: UInt64, cpu: Int, time: UInt64) {
        while st.rings.count <= cpu { st.rings.append([]) }
        freeFlushed(&st, ring: cpu, onCPU: cpu)
        if st.rings[cpu].count >= ringSize {
            // fq_flush_iotlb(): everything queued so far, on every CPU, is now flushed.
            for r in st.rings.indices { for k in st.rings[r].indices { st.rings[r][k].flushed = true } }
            freeFlushed(&st, ring: cpu, onCPU: cpu)
        }
        st.rings[cpu].append(QueueEntry(pfn: pfn, pages: pages, time: time, flushed: false))
        if st.armedAt == nil {
            st.armedAt = time
            st.timerCPU = cpu
        }
    }

    private func freeFlushed(_ st: inout DomainState, ring r: Int, onCPU cpu: Int) {
        guard st.rings[r].contains(where: { $0.flushed }) else { return }
        for e in st.rings[r] where e.flushed { st.allocator.free(pfn: e.pfn, pages: e.pages, cpu: cpu) }
        st.rings[r].removeAll { $0.flushed }
    }

    /// `fq_flush_timeout()` ran just before `time`: every ring's entries queued before it are freed on the
    /// timer's CPU, CPU by CPU; entries queued later (none here) would re-arm it.
    private func fire(_ st: inout DomainState, before time: UInt64) {
        let cpu = st.timerCPU
        for r in st.rings.indices {
            for k in st.rings[r].indices where st.rings[r][k].time < time { st.rings[r][k].flushed = true }
            freeFlushed(&st, ring: r, onCPU: cpu)
        }
        st.armedAt = nil
        if let next = st.rings.enumerated().flatMap({ r in r.element.map { ($0.time, r.offset) } }).min(by: {
            $0.0 < $1.0
        }) {
            st.armedAt = next.0
            st.timerCPU = next.1
        }
    }
}
