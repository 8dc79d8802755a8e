import TraceFormat

/// A buffer the driver handed to a device (docs/replay.md, "Intent"): its GPA range, direction and the address the
/// recording used for it. Slots are reused once a buffer has been unmapped and retired, so the slab grows
/// with the live set, not with the trace.
struct Buffer: Sendable {
    var device: Int = 0
    var gpa: UInt64 = 0
    var size: UInt64 = 0
    var direction: DMADirection = .bidirectional
    /// The DMA handle or IOVA the recording used.
    var recordedAddress: UInt64 = 0
    /// True when ``recordedAddress`` is an IOVA of a translated domain.
    var recordedIOVA = false
    /// Created from a DMA-API event (direction known) rather than only from `iommu:map`.
    var fromDMAAPI = false
    /// Event that created it.
    var event = 0
    /// Incremented at every reuse of the slot, so stale references are recognised.
    var generation: UInt32 = 0
    /// False for a coherent allocation of a translated recording until a host translation shows its GPA.
    var gpaKnown = true
    /// Unmapped (kept for a while to resolve skewed host events).
    var retired = false
    var retiredAt: UInt64 = 0
    /// The device ingest attributed it to, when host evidence moved it to another (-1: not moved).
    var movedFrom = -1
    /// When its unmap was ambiguous: the other device's live buffer on the same IOVA page.
    var ambiguousWith: Int?
    var ambiguousGeneration: UInt32 = 0
    /// When it was unmapped (``retiredAt`` moves while an ambiguous unmap waits for evidence).
    var unmappedAt: UInt64 = 0
    /// Guest CPUs of its map and unmap as recorded (0 when the trace does not say): the IOVA range caches are per CPU.
    var cpu: UInt8 = 0
    var unmapCPU: UInt8 = 0
    /// Domain-wide invalidations recorded before its unmap (``IntentTracker/wideInvalidations``).
    var wideAtUnmap: UInt32 = 0
    /// One DMA-API call traced as several `iommu_map`s (segments of one IOVA range): pages of the whole range
    /// (in the first segment; 0 = a range of its own) and this segment's byte offset in it. Simulated scenarios
    /// allocate the range once, with the first segment, and place the others in it.
    var groupPages: UInt32 = 0
    var groupOffset: UInt64 = 0
    /// When it was mapped (aligned time).
    var mappedAt: UInt64 = 0

    @inline(__always) func contains(recorded a: UInt64) -> Bool {
        a >= recordedAddress && a - recordedAddress < max(size, 1)
    }

    /// True when the buffer covers part of the page holding `a`.
    @inline(__always) func overlapsPage(of a: UInt64) -> Bool {
        let p = a >> 12
        return p >= recordedAddress >> 12 && p <= (recordedAddress &+ max(size, 1) &- 1) >> 12
    }
}

/// What the recording says happened to an access.
enum RecordedOutcome: Sendable {
    case none
    /// The host translated it to this GPA.
    case translated(UInt64)
    /// The host recorded a fault with this reason.
    case fault(UInt32)
}

extension RecordedOutcome {
    /// True when the host recorded a translation or a fault (the device's DMA went through the vIOMMU).
    var isHostEvidence: Bool {
        if case .none = self { return false }
        return true
    }
}

/// How an access relates to the buffers.
enum AccessKind: UInt8, Sendable {
    /// Within the buffer's lifetime (mapped, not yet unmapped).
    case inLifetime
    /// After the buffer was unmapped (use after unmap).
    case postUnmap
    /// After the buffer was unmapped and after the host recorded the IOTLB invalidation of that unmap (its
    /// page-selective invalidation, or a domain-wide flush after it): no stale entry can explain a translation.
    case afterInvalidation
    /// The address resolves to no buffer (stray DMA).
    case stray
}

/// One device access, independent of addressing: which buffer and offset it meant, or the raw address of a
/// stray access, and what the recording says happened.
struct Access: Sendable {
    var device: Int
    var slot: Int
    var kind: AccessKind
    var offset: UInt64
    var rawAddress: UInt64
    var size: UInt64
    var write: Bool
    var recorded: RecordedOutcome
    var eventIndex: Int
    var event: Event
    var time: UInt64
    /// Implied by the buffer's direction (no host trace for the device), not recorded.
    var implied: Bool
    /// For a use after unmap (``AccessKind/postUnmap``): when the buffer was unmapped.
    var unmappedAt: UInt64 = 0
    /// A late translation of a retired buffer waiting (pending) for a map of the same page within the skew
    /// window, which would explain it better; delivered as a use after unmap of that buffer if none comes.
    var fallbackGeneration: UInt32 = 0
}

/// Where the replay engine came to know a device at all (first event), for device-level occurrences.
struct FirstSeen: Sendable {
    var index: Int
    var event: Event
}

/// Options of a replay run.
public struct ReplayOptions: Sendable {
    /// How far apart (ns) a host access and the guest map/unmap it belongs to may be after clock alignment.
    /// A recorded *successful* translation proves its mapping was live, so it is matched to the buffer with
    /// the same IOVA page and GPA mapped or unmapped within this window; a translation of a buffer later than
    /// this after its unmap is a use after unmap (under strict invalidation a divergence). nil: derived from the
    /// trace's measured alignment, ``IntentTracker/derivedSkewNs(_:)`` (3 x the residual skew, at least 1 ms).
    public var skewToleranceNs: UInt64?
    /// Whether device accesses are implied from buffers (the device touches each buffer in its direction
    /// before unmap): `nil` decides per device (implied unless the host trace recorded its accesses).
    public var impliedAccesses: Bool?
    /// At most this many divergences are listed per scenario (the rest are counted in a note).
    public var maxDivergences: Int
    /// Hypotheses switched on for every scenario.
    public var hypotheses: Set<String>
    /// Threads replaying the scenarios of one trace (results do not depend on it): 1 keeps everything on the
    /// calling thread; nil = 2 when there are several scenarios and a second processor is online.
    public var scenarioThreads: Int?
    /// Each scenario also reports its predicted DMA stream (``ScenarioResult/stream``), for cross-validation.
    public var collectStream = false
    /// Scenarios that behave alike on this trace's devices (equal ``SimulationKey``) are simulated once and the
    /// outcome given to each (results identical, docs/replay.md); false simulates every scenario (tests and
    /// measurements).
    public var deduplicate = true
    /// The recorded scenario's IOVA allocator check keeps this many timer/CPU hypotheses per domain, in turn:
    /// when a budget leaves allocator divergences, the replay runs again with the next one (when the source can
    /// be read again) and keeps the run with fewer, saying so in a note. Histories in which the flush-queue timer
    /// moved between CPUs many times are pruned by the narrow search (docs/replay.md). Default 96, then 1,000,
    /// then 10,000 (within ``allocatorSearchWork``).
    public var allocatorSearch: [Int] = [AllocatorCheck.defaultHypotheses, 1000, 10_000]
    /// The most a wider search may cost, as recorded allocations checked × hypotheses per domain (a search's time
    /// grows with both): a budget above it is not tried, and a note says how to ask for it. nil: no bound (a
    /// search the user asked for). The default, 5 × 10^7, lets a capture of a few thousand allocations (a boot)
    /// search with 10,000 (~10 s in a release build) and keeps a trace of millions at 96 and 1,000 (a wrong model
    /// on a long trace must not cost hours).
    public var allocatorSearchWork: UInt64? = 50_000_000

    public init(
        skewToleranceNs: UInt64? = nil, impliedAccesses: Bool? = nil, maxDivergences: Int = 1000,
        hypotheses: Set<String> = [],
        scenarioThreads: Int? = nil, collectStream: Bool = false
    ) {
        self.collectStream = collectStream
        self.skewToleranceNs = skewToleranceNs
        self.impliedAccesses = impliedAccesses
        self.maxDivergences = maxDivergences
        self.hypotheses = hypotheses
        self.scenarioThreads = scenarioThreads
    }
}

/// Reconstructs the workload from the event stream once, for all scenarios (docs/replay.md, "Intent"): live buffers
/// keyed by (device, recorded address page), device accesses from host events (or implied at unmap), and
/// the recorded outcome of each. Each reconstructed operation is fed to every scenario state in turn.
///
/// The lookups called per event from ``handle(_:_:_:)`` are declared `mutating` although they only read:
/// this struct is 312 bytes, and calling a non-mutating method from a mutating one that is not inlined
/// copies all of it to the stack first (`@inline(__always)` was not always honoured; measured: 15% of a
/// one-scenario replay).
struct IntentTracker {
    let facts: [DeviceFacts]
    let implied: [Bool]
    let recordedTranslated: [Bool]
    let options: ReplayOptions
    let clockOffsets: [Int64]
    /// The skew window (``ReplayOptions/skewToleranceNs``, or derived from the alignment).
    let skewNs: UInt64
    /// How long an unmapped buffer stays resolvable for late host translations (use after unmap is judged by
    /// the scenarios: stale through the flush queue, or a fault): the skew window, at least 100 ms.
    let retainNs: UInt64
    /// The recorded scenario's IOVA allocator check (nil when no recorded translated scenario is replayed, or
    /// while it runs on ``checkWorker``).
    var allocatorCheck: AllocatorCheck?
    /// Set while the allocator check runs on the scenario worker's thread: the calls whose answer the tracker
    /// does not need (DMA-API maps, unmaps, the end) are queued in the operation log, in order; the first call
    /// that needs one (an `iommu:map`, which may continue the device's open allocation) takes the check back
    /// (``ScenarioWorker/takeCheck()``, then the calls still in the log) and it runs here from then on. The
    /// check sees the same calls in the same order either way.
    var checkWorker: ScenarioWorker?
    /// Host IOTLB invalidations (host clock, in trace order) against guest unmaps, per IOVA page: the k-th
    /// page-selective invalidation of a page answers its k-th unmap (strict), so whether a late translation came
    /// after its unmap's invalidation does not depend on the guest/host clock alignment.
    /// Per IOVA page: recorded page-selective invalidations and unmaps (``AddressTable``: counted per unmapped
    /// page, where a `Dictionary` spent ~8% of a one-scenario replay hashing).
    var pageInvalidations = AddressTable(capacity: 64)
    var pageUnmaps = AddressTable(capacity: 64)
    var sawPageInvalidation = false
    /// Domain-wide or global invalidations seen (the flush queue's flushes under lazy invalidation).
    var wideInvalidations: UInt32 = 0
    var sawWideInvalidation = false
    /// Translations later than the skew window after their unmap that no recorded invalidation lets us judge.
    var lateUnjudged = 0
    /// The recording used lazy invalidation (domain-wide flushes answer batches of unmaps, not one each).
    let recordedLazy: Bool
    /// Buffers of `iommu_map`s held back until it is known whether the next map continues the same DMA-API call
    /// (its segments are placed in one IOVA range); delivered before any other event.
    var held: [Int] = []
    var heldDevice = -1
    var heldCPU: UInt8 = 0

    var buffers: [Buffer] = []
    var freeSlots: [Int] = []
    /// Live buffers and the latest retired buffer by (device, recorded address page), one entry for both
    /// (``BufferPageTable``); a radix table, not a hash, because every map and unmap touches each page of its
    /// buffer here (measured: 14% of a one-scenario replay less than with ``AddressTable``).
    var bufferPages = BufferPageTable()
    /// Live buffers whose recorded IOVA page was already live for the same device with another GPA: a real
    /// domain refuses a double map, so one of the two was attributed to the wrong device at ingest.
    var shadow = AddressTable(capacity: 64)
    /// Buffers moved to another device by host evidence, keyed by the device ingest gave them.
    var moved = AddressTable(capacity: 64)
    /// Unattributed `iommu:map`s by page, and the ones a device adopted (for unattributed unmaps).
    var orphans = AddressTable(capacity: 64)
    var adopted = AddressTable(capacity: 64)
    var orphanCount = 0
    var adoptedCount = 0
    var retiredFIFO: [(slot: Int, generation: UInt32, at: UInt64)] = []
    var retiredHead = 0
    /// Written by ``expire(now:_:)`` only to keep its early loads (see there); never read.
    var expirePrefetch: UInt8 = 0
    var pending: [Access] = []
    var pendingHead = 0
    var lastGuestMapTime: UInt64 = 0
    var sawGuestMap = false
    var firstSeen: [FirstSeen?]
    /// Devices without a ``firstSeen`` yet: once every device has one, an event reads this count instead of its
    /// device's optional (which it loaded whole, 72 bytes, to test it).
    var unseenDevices: Int

    var unattributed = 0
    var reattributed = 0
    var nextExpiry: UInt64 = 0
    var lastExpiry: UInt64 = 0
    var freeSlotsLastCreated = 0
    var resurrected = 0
    var unmatchedInCoverage = 0
    var outsideCoverage = 0
    var oversizeBuffers = 0
    var recordedGuestFaults: [(device: Int, page: UInt64, reason: UInt32, index: Int, event: Event)] = []
    var recordedProbeFailures: [(device: Int, index: Int, event: Event)] = []
    var eventsSeen = 0
    /// Tests only: ``unmapCandidate(_:_:exact:)`` always takes its table loop (no fast path), to compare the two.
    var tableLoopOnly = false

    /// Pages of one buffer registered for lookup; larger buffers are counted in a note.
    static let maxPagesPerBuffer: UInt64 = 1 << 16
    static let maxPending = 4096
    static let ambiguityWindowNs: UInt64 = 50_000_000
    static let maxRetired = 1 << 16
    static let maxRecordedFaults = 100_000

    init(facts: [DeviceFacts], metadata: TraceMetadata, options: ReplayOptions) {
        self.facts = facts
        self.options = options
        let hostInput = metadata.inputs.contains { ["qemu-log", "simpletrace"].contains($0.format) }
        let guestTranslated =
            metadata.capture.guestIOMMU == .translated
            && (metadata.capture.viommu.map { $0 != "none" } ?? false)
        recordedTranslated = facts.map { f in guestTranslated && f.behindIOMMU && (!f.isVirtio || f.iommuPlatform) }
        implied = zip(facts, recordedTranslated).map { _, t in options.impliedAccesses ?? !(hostInput && t) }
        clockOffsets = metadata.clocks.map { $0.offsetToReferenceNs ?? 0 }
        skewNs = options.skewToleranceNs ?? Self.derivedSkewNs(metadata)
        recordedLazy = metadata.capture.flushPolicy == .lazy
        retainNs = max(skewNs, 100_000_000)
        firstSeen = Array(repeating: nil, count: facts.count)
        unseenDevices = facts.count
    }

    /// The skew window the measured clock alignment supports: 3 x the median residual after alignment, at least
    /// 1 ms (0.07-0.19 ms residual on the bundled captures); 1 ms when nothing was aligned.
    public static func derivedSkewNs(_ metadata: TraceMetadata) -> UInt64 {
        let residual = UInt64(max(0, metadata.capture.alignment?.residualSkewNs ?? 0))
        return max(1_000_000, 3 &* residual)
    }

    @inline(__always) func time(_ e: Event) -> UInt64 {
        if e.clock == 0 || e.eventFlags.contains(.aligned) { return e.timestamp }
        let off = Int(e.clock) < clockOffsets.count ? clockOffsets[Int(e.clock)] : 0
        return off >= 0 ? e.timestamp &+ UInt64(off) : (e.timestamp >= UInt64(-off) ? e.timestamp - UInt64(-off) : 0)
    }

    @inline(__always) static func key(_ device: Int, _ address: UInt64) -> UInt64 {
        UInt64(truncatingIfNeeded: device) << 48 | ((address >> 12) & 0xFFFF_FFFF_FFFF)
    }

    /// Feeds one event; scenario states receive the operations it implies.
    mutating func handle(_ index: Int, _ e: Event, _ states: inout some ScenarioFeed) {
        eventsSeen += 1
        if !held.isEmpty && !(e.kind == .iommuMap && e.hasDevice && Int(e.device) == heldDevice) { flushHeld(&states) }
        let t = time(e)
        // Expiry works at 1 ms granularity (the skew window is tens of ms): not on every event.
        if t >= nextExpiry || t < lastExpiry { expireTick(t, &states) }
        if e.kind == .hostInvalidate { noteInvalidation(e) }
        if e.kind == .iommuMap { noteMapCPU(index, e, t, &states) }
        guard e.hasDevice else {
            devicelessEvent(index, e, t, &states)
            return
        }
        let d = Int(e.device)
        guard d < facts.count else {
            unattributed += 1
            return
        }
        if unseenDevices > 0 && firstSeen[d] == nil && Self.isDMAEvent(e.kind) {
            firstSeen[d] = FirstSeen(index: index, event: e)
            unseenDevices -= 1
        }
        switch e.kind {
        case .dmaMap, .dmaAlloc:
            dmaMapEvent(index, e, d, t, &states)
        case .iommuMap:
            iommuMapEvent(index, e, d, t, &states)
        case .dmaUnmap, .dmaFree, .iommuUnmap:
            unmapEvent(index, e, d, t, &states)
        case .hostTranslate:
            translateEvent(index, e, d, t, &states)
        case .hostFault, .hostAccess:
            hostAccessEvent(index, e, d, t, &states)
        case .guestFault, .smmuv3Event, .smmuContextFault, .virtioProbe:
            logEvent(index, e, d)
        default:
            // swiotlb_full, intr_remap_fault and the other log-only kinds carry no mapping or access to replay;
            // analysis reports them (Analysis/RecordedLogFindings).
            break
        }
    }

    /// The per-event work kept out of ``handle(_:_:_:)``, whose every event pays its frame: expiry (once per ms
    /// of trace), the CPU an `iommu:map` records, events without a device, and the guest's fault lines and probe
    /// results. Each kind's work is a function of its own too (``dmaMapEvent(_:_:_:_:_:)`` ...): one function
    /// for all of them spilled and restored registers for every event, ~50 instructions of a one-scenario
    /// replay's ~970 per event (callgrind).
    @inline(never)
    private mutating func expireTick(_ t: UInt64, _ states: inout some ScenarioFeed) {
        expire(now: t, &states)
        lastExpiry = t
        nextExpiry = t &+ 1_000_000
    }

    @inline(never)
    private mutating func noteMapCPU(_ index: Int, _ e: Event, _ t: UInt64, _ states: inout some ScenarioFeed) {
        guard let cpu = Self.recordedCPU(of: e) else { return }
        if checkWorker != nil {
            states.check(
                CheckOp(call: .noteCPU, device: 0, iova: 0, size: 0, cpu: cpu, time: t, index: index, event: e))
        } else {
            allocatorCheck?.noteCPU(cpu)
        }
    }

    @inline(never)
    private mutating func devicelessEvent(_ index: Int, _ e: Event, _ t: UInt64, _ states: inout some ScenarioFeed) {
        switch e.kind {
        case .iommuMap:
            if checkWorker != nil { takeCheckBack(&states) }
            allocatorCheck?.mapUnattributed(
                iova: e.address, size: e.size, cpu: Self.recordedCPU(of: e), time: t, index: index, event: e)
            orphan(e, index: index, time: t)
        case .iommuUnmap:
            if checkWorker != nil { takeCheckBack(&states) }
            allocatorCheck?.unmapUnattributed(iova: e.address, cpu: Self.recordedCPU(of: e), time: t)
            unmapOrphan(e, index: index, time: t, &states)
        case .dmaMap, .dmaAlloc: unattributed += 1
        default: break
        }
    }

    @inline(never)
    private mutating func logEvent(_ index: Int, _ e: Event, _ d: Int) {
        switch e.kind {
        case .guestFault, .smmuv3Event, .smmuContextFault:
            // Translation faults the guest printed, checked against the predicted fault records. AMD-Vi events
            // other than page faults (INVALID_DEVICE_REQUEST, ILLEGAL_DEV_TABLE_ENTRY, ...) are not translation
            // faults and are left out knowingly; an SMMUv3 event's reason is its event id, a v2 fault's its FSR.
            let reason: UInt32 = e.kind == .smmuv3Event ? UInt32(e.detail) : e.aux
            let amdNonPageFault =
                e.kind == .guestFault && e.detail == FaultSource.amdvi.rawValue && e.aux != 2 && e.aux != 0xd
            if !amdNonPageFault && recordedGuestFaults.count < Self.maxRecordedFaults {
                recordedGuestFaults.append((d, e.address & ~0xFFF, reason, index, e))
            }
        case .virtioProbe:
            if e.detail != ProbeResult.probed.rawValue { recordedProbeFailures.append((d, index, e)) }
        default:
            break
        }
    }

    /// A DMA-API map or coherent allocation (`dma:dma_map_*`, `dma:dma_alloc*`) of device `d`.
    @inline(never)
    private mutating func dmaMapEvent(
        _ index: Int, _ e: Event, _ d: Int, _ t: UInt64, _ states: inout some ScenarioFeed
    ) {
        noteGuestMap(t)
        if e.eventFlags.contains(.error) { return }
        // The iommu:map of this mapping came first (or a sub-page mapping inside an IOMMU-mapped page): the
        // buffer exists; learn direction and API when it is the same mapping.
        if let c = covering(d, e.address, gpa: e.kind == .dmaMap ? e.address2 : nil) {
            if buffers[c].recordedAddress == e.address && !buffers[c].fromDMAAPI {
                buffers[c].direction = e.direction
                buffers[c].fromDMAAPI = true
            }
            return
        }
        let gpa = e.kind == .dmaMap ? e.address2 : e.address
        if recordedTranslated[d] {
            // One DMA-API call, one IOVA allocation (kernels with dma:* tracepoints; no iommu:map covered it).
            // 5.10's intel-iommu dma_ops trace the pages they mapped: `dev_addr` carries the buffer's offset in
            // its first page and `size` is nrpages << 12 (`__intel_map_single()`, drivers/iommu/intel/iommu.c
            // at v5.10), so the IOVA range starts at that page.
            let driverMap = MapAPI(rawValue: e.detail)?.isIOMMUDriverMap == true
            let iova = driverMap ? e.address & ~0xFFF : e.address
            if checkWorker != nil {
                states.check(
                    CheckOp(
                        call: .map, device: d, iova: iova, size: e.size, cpu: Self.recordedCPU(of: e),
                        time: t, index: index, event: e))
            } else {
                allocatorCheck?.map(
                    device: d, iova: iova, size: e.size, cpu: Self.recordedCPU(of: e), time: t,
                    index: index, event: e)
            }
        }
        create(
            d, gpa: gpa, size: e.size, direction: e.direction, recorded: e.address,
            recordedIOVA: recordedTranslated[d], fromDMAAPI: true, index: index, time: t, &states)
        if e.kind == .dmaAlloc && recordedTranslated[d] {
            // dma_alloc records the CPU virtual address; the GPA behind the IOVA comes from the host.
            buffers[freeSlotsLastCreated].gpaKnown = false
        }
    }

    /// An `iommu:map` of device `d` (a segment of a DMA-API call, or a map the DMA-API events do not show).
    @inline(never)
    private mutating func iommuMapEvent(
        _ index: Int, _ e: Event, _ d: Int, _ t: UInt64, _ states: inout some ScenarioFeed
    ) {
        noteGuestMap(t)
        var continues = false
        if recordedTranslated[d] {
            if checkWorker != nil { takeCheckBack(&states) }
            // Not `if let check = allocatorCheck`: that copied the whole check (retaining its tables) per map.
            if let extended = allocatorCheck?.map(
                device: d, iova: e.address, size: e.size, cpu: Self.recordedCPU(of: e), time: t,
                index: index, event: e
            ) {
                continues = extended
            } else if let last = held.last, heldDevice == d, heldCPU == Self.cpu(of: e), e.address & 0xFFF == 0,
                buffers[last].recordedAddress &+ max(buffers[last].size, 1) == e.address
            {
                // No allocator to ask: an ascending page-contiguous map on the same CPU continues it.
                continues = true
            }
        }
        if !continues && !held.isEmpty { flushHeld(&states) }
        let k = Self.key(d, e.address)
        if let s = bufferPages.live(k).map(Int.init), !buffers[s].retired, buffers[s].contains(recorded: e.address),
            buffers[s].gpa &+ (e.address &- buffers[s].recordedAddress) == e.address2
        {
            if !held.isEmpty { flushHeld(&states) }
            return  // already known from the DMA-API event
        }
        create(
            d, gpa: e.address2, size: e.size, direction: .bidirectional, recorded: e.address,
            recordedIOVA: true, fromDMAAPI: false, index: index, time: t, cpu: Self.cpu(of: e), hold: true, &states)
    }

    /// A DMA-API unmap or free, or an `iommu:unmap`, of device `d`: ends the buffers on its pages.
    @inline(never)
    private mutating func unmapEvent(_ index: Int, _ e: Event, _ d: Int, _ t: UInt64, _ states: inout some ScenarioFeed)
    {
        noteGuestMap(t)
        if recordedTranslated[d] {
            let cpu = Self.recordedCPU(of: e)
            if checkWorker != nil {
                states.check(
                    CheckOp(
                        call: .unmap, device: d, iova: e.address, size: 0, cpu: cpu, time: t, index: index, event: e
                    ))
            } else {
                allocatorCheck?.unmap(device: d, iova: e.address, cpu: cpu, time: t)
            }
        }
        let size = e.kind == .iommuUnmap ? max(e.size, e.address2) : e.size
        let first = e.address >> 12
        let pages = min(max(1, PageSpan(address: e.address, size: size).count), Self.maxPagesPerBuffer)
        var p: UInt64 = 0
        while p < pages {
            let a = (first &+ p) << 12
            if let s = unmapCandidate(d, a, exact: e.address) {
                let alt = e.kind == .iommuUnmap ? otherLive(d, a) : nil
                let end = buffers[s].recordedAddress &+ max(buffers[s].size, 1)
                unmap(s, index: index, event: e, time: t, &states)
                buffers[s].ambiguousWith = alt
                buffers[s].ambiguousGeneration = alt.map { buffers[$0].generation } ?? 0
                // Skip the rest of this buffer's pages.
                let next = (end &+ 0xFFF) >> 12
                p = next > first &+ p ? next &- first : p &+ 1
            } else {
                p &+= 1
            }
        }
    }

    /// A host translation recorded for device `d`: matched to the buffer it belongs to.
    @inline(never)
    private mutating func translateEvent(
        _ index: Int, _ e: Event, _ d: Int, _ t: UInt64, _ states: inout some ScenarioFeed
    ) {
        var a = Access(
            device: d, slot: -1, kind: .stray, offset: 0, rawAddress: e.address, size: max(e.size, 1),
            write: e.eventFlags.contains(.write), recorded: .translated(e.address2), eventIndex: index, event: e,
            time: t, implied: false)
        if let s = matchTranslation(d, iova: e.address, gpa: e.address2, time: t)
            ?? reattribute(to: d, iova: e.address, gpa: e.address2, index: index, time: t, &states)
            ?? adopt(to: d, iova: e.address, gpa: e.address2, index: index, time: t, &states)
        {
            // An ambiguous unmap (two devices had the page live) is swapped only on clear evidence: a translation
            // of the taken-as-unmapped buffer well past any clock drift (TCG drifts by several ms).
            if buffers[s].retired && t > buffers[s].unmappedAt &+ max(skewNs, Self.ambiguityWindowNs) {
                resurrect(s, index: index, event: e, time: t, &states)
            }
            a.slot = s
            // Later than the skew window after its unmap: a use after unmap (the scenarios judge it), unless a
            // map of the same page follows within the skew window (clock skew): wait for it.
            a.kind =
                buffers[s].retired && t > buffers[s].unmappedAt &+ skewNs
                ? lateKind(s, iova: e.address) : .inLifetime
            a.unmappedAt = buffers[s].unmappedAt
            if a.kind == .afterInvalidation || a.kind == .postUnmap {
                a.fallbackGeneration = buffers[s].generation
                a.offset = offset(s, e.address)
                enqueuePending(a, &states)
                return
            }
            learnGPA(s, iova: e.address, gpa: e.address2, index: index, time: t, &states)
            a.offset = offset(s, e.address)
            deliver(a, &states)
        } else {
            enqueuePending(a, &states)
        }
    }

    /// A host fault or access of device `d` (no translation to match: by page).
    @inline(never)
    private mutating func hostAccessEvent(
        _ index: Int, _ e: Event, _ d: Int, _ t: UInt64, _ states: inout some ScenarioFeed
    ) {
        var a = Access(
            device: d, slot: -1, kind: .stray, offset: 0, rawAddress: e.address, size: max(e.size, 1),
            write: e.eventFlags.contains(.write), recorded: e.kind == .hostFault ? .fault(e.aux) : .none,
            eventIndex: index, event: e, time: t, implied: false)
        let k = Self.key(d, e.address)
        let entry = bufferPages.entry(k)
        if let s = BufferPageTable.live(entry).map(Int.init), !buffers[s].retired,
            buffers[s].overlapsPage(of: e.address)
        {
            a.slot = s
            a.kind = .inLifetime
        } else if let s = BufferPageTable.retired(entry).map(Int.init), buffers[s].retired,
            buffers[s].overlapsPage(of: e.address)
        {
            a.slot = s
            a.kind = .postUnmap
        }
        if a.slot >= 0 { a.offset = offset(a.slot, e.address) }
        deliver(a, &states)
    }

    /// Takes the allocator check back from the worker: the calls it was sent are made by then, the ones still in
    /// the log being filled (`states`) are made here, and every later call is made here.
    private mutating func takeCheckBack(_ states: inout some ScenarioFeed) {
        allocatorCheck = checkWorker?.takeCheck()
        checkWorker = nil
        states.applyChecks(to: &allocatorCheck)
    }

    /// A host IOTLB invalidation (kinds as the QEMU importers store them in `aux2`: 1 global, 2 domain,
    /// 3 page range, 7 IOTLB reset).
    private mutating func noteInvalidation(_ e: Event) {
        switch e.aux2 {
        case 3:
            sawPageInvalidation = true
            let pages = min(max(1, PageSpan.pages(covering: e.size)), 512)
            for p in 0..<pages { pageInvalidations.increment((e.address >> 12) &+ p) }
        case 1, 2, 7:
            sawWideInvalidation = true
            wideInvalidations &+= 1
        default:
            break
        }
    }

    /// How a translation of retired buffer `s` later than the skew window after its unmap relates to the
    /// recorded invalidations: after its unmap's page invalidation (or a domain-wide flush after the unmap) it
    /// is ``AccessKind/afterInvalidation``; before it, clock skew (``AccessKind/inLifetime``); without recorded
    /// invalidations it is judged by time alone (``AccessKind/postUnmap``) and counted in a note.
    private mutating func lateKind(_ s: Int, iova: UInt64) -> AccessKind {
        let page = iova >> 12
        if sawPageInvalidation, let n = pageUnmaps.get(page) {
            return (pageInvalidations.get(page) ?? 0) >= n ? .afterInvalidation : .inLifetime
        }
        if sawWideInvalidation && recordedLazy {
            return wideInvalidations > buffers[s].wideAtUnmap ? .afterInvalidation : .postUnmap
        }
        lateUnjudged += 1
        return .postUnmap
    }

    /// The guest CPU an event records, nil when it records none: ``Event/cpu`` (format 3.0: every event of an
    /// ftrace or trace.dat input), else the `cpu` slot of an `iommu_map`/`iommu_unmap` (CPU + 1; files
    /// written before 3.0). Not clamped: the allocator check keeps up to 8,192 CPUs apart.
    @inline(__always) static func recordedCPU(of e: Event) -> Int? {
        if let cpu = e.cpu { return Int(cpu) }
        guard e.kind == .iommuMap || e.kind == .iommuUnmap, e.aux2 > 0 else { return nil }
        return Int(e.aux2 - 1)
    }

    /// ``recordedCPU(of:)``, or 0, as a buffer stores it for the scenarios' allocators (one byte: CPUs above 255
    /// share the caches of 255 there).
    @inline(__always) static func cpu(of e: Event) -> UInt8 { UInt8(clamping: recordedCPU(of: e) ?? 0) }

    static func isDMAEvent(_ k: EventKind) -> Bool {
        switch k {
        case .dmaMap, .dmaUnmap, .dmaAlloc, .dmaFree, .dmaMapError, .iommuMap, .iommuUnmap, .hostTranslate, .hostFault,
            .hostAccess, .guestFault, .smmuv3Event, .smmuContextFault, .virtioProbe, .virtioFeatures, .virtioStatus,
            .swiotlbBounce:
            return true
        default:
            return false
        }
    }

    private mutating func noteGuestMap(_ t: UInt64) {
        sawGuestMap = true
        if t > lastGuestMapTime { lastGuestMapTime = t }
    }

    /// The buffer an unmap of (`d`, `a`) ends: among the device's live buffers on that page (its own, a
    /// shadowed one, one moved away from it by host evidence), the one whose recorded address is exactly `a`,
    /// else the most recent.
    private mutating func unmapCandidate(_ d: Int, _ a: UInt64, exact: UInt64) -> Int? {
        let k = Self.key(d, a)
        if shadow.count == 0 && moved.count == 0 && !tableLoopOnly {
            // The usual case: no shadowed or moved buffers, so the live buffer is the only candidate (what the
            // loop below finds then, without its three-way table choice per page: 1,080 -> 1,065 instructions
            // per event on the reading thread of a one-scenario replay, callgrind).
            guard let c = bufferPages.live(k).map(Int.init), !buffers[c].retired, buffers[c].overlapsPage(of: a)
            else { return nil }
            return c
        }
        var best: Int?
        var bestExact = false
        for table in 0..<3 {
            if (table == 1 && shadow.count == 0) || (table == 2 && moved.count == 0) { continue }
            let hit = table == 0 ? bufferPages.live(k) : (table == 1 ? shadow.get(k) : moved.get(k))
            guard let c = hit.map(Int.init), !buffers[c].retired, buffers[c].overlapsPage(of: a) else { continue }
            if table == 2 && buffers[c].movedFrom != d { continue }
            let isExact = buffers[c].recordedAddress == exact
            if best == nil || (isExact && !bestExact)
                || (isExact == bestExact && buffers[c].event > buffers[best!].event)
            {
                best = c
                bestExact = isExact
            }
        }
        return best
    }

    /// A live buffer of another device on the same IOVA page (an `iommu:unmap` names no domain, so ingest's
    /// choice between the two may be wrong; host translations decide later, see ``resurrect``).
    private mutating func otherLive(_ d: Int, _ a: UInt64) -> Int? {
        for dev in facts.indices where dev != d {
            if let c = bufferPages.live(Self.key(dev, a)).map(Int.init), !buffers[c].retired, buffers[c].recordedIOVA,
                buffers[c].overlapsPage(of: a)
            {
                return c
            }
        }
        return nil
    }

    /// A recorded translation matched a retired buffer whose unmap was ambiguous while another device's buffer on
    /// the same page is still live: under strict invalidation the host could not translate an unmapped IOVA, so
    /// the unmap ended the other buffer. Swap them.
    private mutating func resurrect(_ s: Int, index: Int, event: Event, time: UInt64, _ states: inout some ScenarioFeed)
    {
        guard buffers[s].retired, let alt = buffers[s].ambiguousWith, alt != s, !buffers[alt].retired,
            buffers[alt].generation == buffers[s].ambiguousGeneration
        else { return }
        let b = buffers[s]
        let pages = min(PageSpan(address: b.recordedAddress, size: b.size).count, Self.maxPagesPerBuffer)
        for p in 0..<pages {
            let a = (b.recordedAddress >> 12 &+ p) << 12
            bufferPages.removeRetired(Self.key(b.device, a), ifValue: UInt32(s))
            register(s, device: b.device, address: a)
        }
        buffers[s].retired = false
        buffers[s].ambiguousWith = nil
        resurrected += 1
        states.map(slot: s, buffer: buffers[s], index: b.event, time: time)
        unmap(alt, index: index, event: event, time: time, &states)
        buffers[alt].ambiguousWith = s
        buffers[alt].ambiguousGeneration = buffers[s].generation
    }

    @inline(__always) static func orphanKey(_ address: UInt64) -> UInt64 {
        0xFFFF << 48 | ((address >> 12) & 0xFFFF_FFFF_FFFF)
    }

    /// An `iommu:map` ingest could not attribute: kept by page (scenarios do not see it) until a host
    /// translation names its device.
    private mutating func orphan(_ e: Event, index: Int, time: UInt64) {
        noteGuestMap(time)
        let s: Int
        if let f = freeSlots.popLast() { s = f } else { s = buffers.count; buffers.append(Buffer()) }
        let gen = buffers[s].generation &+ 1
        buffers[s] = Buffer(
            device: -1, gpa: e.address2, size: e.size, direction: .bidirectional, recordedAddress: e.address,
            recordedIOVA: true, fromDMAAPI: false, event: index, generation: gen, retired: false, retiredAt: 0)
        let pages = min(PageSpan(address: e.address, size: e.size).count, Self.maxPagesPerBuffer)
        for p in 0..<pages { orphans.set(Self.orphanKey((e.address >> 12 &+ p) << 12), UInt32(s)) }
        orphanCount += 1
    }

    /// The translating device `d` adopts an orphan mapping whose recorded translation matches.
    private mutating func adopt(
        to d: Int, iova: UInt64, gpa: UInt64, index: Int, time: UInt64, _ states: inout some ScenarioFeed
    ) -> Int? {
        guard orphans.count > 0, let s = orphans.get(Self.orphanKey(iova)).map(Int.init), buffers[s].device < 0,
            !buffers[s].retired, translates(s, iova: iova, gpa: gpa)
        else { return nil }
        let b = buffers[s]
        let pages = min(PageSpan(address: b.recordedAddress, size: b.size).count, Self.maxPagesPerBuffer)
        buffers[s].device = d
        for p in 0..<pages {
            let a = (b.recordedAddress >> 12 &+ p) << 12
            orphans.remove(Self.orphanKey(a), ifValue: UInt32(s))
            adopted.set(Self.orphanKey(a), UInt32(s))
            register(s, device: d, address: a)
        }
        adoptedCount += 1
        states.map(slot: s, buffer: buffers[s], index: b.event, time: time)
        return s
    }

    /// An unattributed `iommu:unmap`: ends an orphan (never seen by scenarios) or an adopted mapping.
    private mutating func unmapOrphan(_ e: Event, index: Int, time: UInt64, _ states: inout some ScenarioFeed) {
        noteGuestMap(time)
        guard orphans.count > 0 || adopted.count > 0 else { return }
        let a = e.address & ~0xFFF
        let k = Self.orphanKey(a)
        if let s = orphans.get(k).map(Int.init), buffers[s].device < 0, !buffers[s].retired {
            let b = buffers[s]
            let pages = min(PageSpan(address: b.recordedAddress, size: b.size).count, Self.maxPagesPerBuffer)
            for p in 0..<pages {
                orphans.remove(Self.orphanKey((b.recordedAddress >> 12 &+ p) << 12), ifValue: UInt32(s))
            }
            buffers[s].retired = true
            freeSlots.append(s)
        } else if let s = adopted.get(k).map(Int.init), buffers[s].device >= 0, !buffers[s].retired {
            let b = buffers[s]
            let pages = min(PageSpan(address: b.recordedAddress, size: b.size).count, Self.maxPagesPerBuffer)
            for p in 0..<pages {
                adopted.remove(Self.orphanKey((b.recordedAddress >> 12 &+ p) << 12), ifValue: UInt32(s))
            }
            unmap(s, index: index, event: e, time: time, &states)
        }
    }

    /// A live buffer of another device that the host's translation (`d`, `iova` -> `gpa`) shows to be `d`'s:
    /// it is moved to `d` (scenarios unmap it from the old device and map it for `d`).
    private mutating func reattribute(
        to d: Int, iova: UInt64, gpa: UInt64, index: Int, time: UInt64, _ states: inout some ScenarioFeed
    ) -> Int? {
        for other in facts.indices where other != d {
            let k = Self.key(other, iova)
            for table in 0..<2 {
                let hit = table == 0 ? bufferPages.live(k) : shadow.get(k)
                guard let s = hit.map(Int.init), !buffers[s].retired, translates(s, iova: iova, gpa: gpa) else {
                    continue
                }
                let old = buffers[s]
                let pages = min(PageSpan(address: old.recordedAddress, size: old.size).count, Self.maxPagesPerBuffer)
                for p in 0..<pages {
                    let a = (old.recordedAddress >> 12 &+ p) << 12
                    bufferPages.removeLive(Self.key(other, a), ifValue: UInt32(s))
                    shadow.remove(Self.key(other, a), ifValue: UInt32(s))
                    moved.set(Self.key(other, a), UInt32(s))
                    register(s, device: d, address: a)
                }
                buffers[s].device = d
                buffers[s].movedFrom = other
                buffers[s].recordedIOVA = true
                reattributed += 1
                states.unmap(slot: s, buffer: old, time: time, silently: true)
                states.map(slot: s, buffer: buffers[s], index: index, time: time)
                return s
            }
        }
        return nil
    }

    /// A live buffer of `d` covering `a` whose recorded translation agrees with `gpa` (any when nil).
    private mutating func covering(_ d: Int, _ a: UInt64, gpa: UInt64?) -> Int? {
        let k = Self.key(d, a)
        for table in 0..<2 {
            guard let c = (table == 0 ? bufferPages.live(k) : shadow.get(k)).map(Int.init), !buffers[c].retired,
                buffers[c].contains(recorded: a)
            else { continue }
            if let gpa, buffers[c].gpa &+ (a &- buffers[c].recordedAddress) != gpa { continue }
            return c
        }
        return nil
    }

    /// Puts page `a` of buffer `s` under device `d`. When another live buffer of `d` holds the page, an
    /// `iommu:map` (authoritative for the page) takes the live slot and the other moves to the shadow table;
    /// a DMA-API buffer goes to the shadow table.
    private mutating func register(_ s: Int, device d: Int, address a: UInt64) {
        let k = Self.key(d, a)
        if let o = bufferPages.live(k).map(Int.init), o != s, !buffers[o].retired, buffers[o].overlapsPage(of: a) {
            if buffers[s].fromDMAAPI {
                shadow.set(k, UInt32(s))
            } else {
                shadow.set(k, UInt32(o))
                bufferPages.setLive(k, UInt32(s))
            }
        } else {
            bufferPages.setLive(k, UInt32(s))
        }
    }

    /// A live or recently retired buffer whose recorded mapping translates `iova` to `gpa`'s page.
    private mutating func matchTranslation(_ d: Int, iova: UInt64, gpa: UInt64, time: UInt64) -> Int? {
        let k = Self.key(d, iova)
        let entry = bufferPages.entry(k)
        if let s = BufferPageTable.live(entry).map(Int.init), translates(s, iova: iova, gpa: gpa) { return s }
        if let s = shadow.get(k).map(Int.init), !buffers[s].retired, translates(s, iova: iova, gpa: gpa) { return s }
        if let s = BufferPageTable.retired(entry).map(Int.init), translates(s, iova: iova, gpa: gpa) { return s }
        // The retired table keeps only the latest buffer of a page; an earlier one of the same IOVA page
        // (remapped within the skew window, e.g. a virtio request header re-posted every few µs) is still
        // in the FIFO of recently retired buffers: a host translation late by guest/host clock drift matches it.
        var i = retiredFIFO.count
        var scanned = 0
        while i > retiredHead && scanned < Self.maxRetiredScan {
            i -= 1
            scanned += 1
            let entry = retiredFIFO[i]
            let b = buffers[entry.slot]
            // Only within the skew window of its unmap: an older one is not "late", and matching it would
            // resurrect it (and end the live buffer its ambiguous unmap was weighed against).
            if b.retired && b.generation == entry.generation && b.device == d && time <= b.unmappedAt &+ retainNs
                && translates(entry.slot, iova: iova, gpa: gpa)
            {
                return entry.slot
            }
        }
        return nil
    }

    /// Bound on the retired buffers searched for one unmatched host translation.
    static let maxRetiredScan = 4096

    /// True when buffer `s` covers part of `iova`'s page and its recorded mapping puts that page at `gpa`'s page
    /// (host translations are page-granular: QEMU prints the page's IOVA and GPA). A buffer whose GPA is not
    /// known yet (a coherent allocation seen only through `dma_alloc`) accepts any.
    @inline(__always) private func translates(_ s: Int, iova: UInt64, gpa: UInt64) -> Bool {
        let b = buffers[s]
        let page = iova >> 12, first = b.recordedAddress >> 12, last = (b.recordedAddress &+ max(b.size, 1) &- 1) >> 12
        guard page >= first && page <= last else { return false }
        if !b.gpaKnown || (b.gpa >> 12) &+ (page &- first) == gpa >> 12 { return true }
        // A large IOMMU page (AMD v1 tables take any power-of-two size; Linux maps an 8 KiB buffer as one
        // 8 KiB PTE): QEMU's amdvi_translation_result prints the large page's base as hpa.
        var size: UInt64 = 0x2000
        while size <= 1 << 30 {
            let base = (iova & ~(size &- 1)) >> 12
            if base < first { break }
            if gpa & (size &- 1) == 0 && (b.gpa >> 12) &+ (base &- first) == gpa >> 12 { return true }
            size <<= 1
        }
        return false
    }

    /// True when a host translation of `iova` reported as `gpa` agrees with `reached` (the GPA the scenario
    /// computed): same 4 KiB page, or `gpa` is the base of an aligned large page holding `reached` at the
    /// same offset as `iova` (see ``translates(_:iova:gpa:)``).
    static func samePage(reported gpa: UInt64, reached: UInt64, iova: UInt64) -> Bool {
        if gpa >> 12 == reached >> 12 { return true }
        var size: UInt64 = 0x2000
        while size <= 1 << 30 {
            if gpa & (size &- 1) == 0 && reached & ~(size &- 1) == gpa && reached & (size &- 1) == iova & (size &- 1) {
                return true
            }
            size <<= 1
        }
        return false
    }

    /// Learns the GPA of a buffer known only by its IOVA from its first host translation; scenarios re-place it.
    private mutating func learnGPA(
        _ s: Int, iova: UInt64, gpa: UInt64, index: Int, time: UInt64, _ states: inout some ScenarioFeed
    ) {
        guard !buffers[s].gpaKnown else { return }
        let old = buffers[s]
        buffers[s].gpa =
            ((gpa >> 12) &- ((iova >> 12) &- (old.recordedAddress >> 12))) << 12 | (old.recordedAddress & 0xFFF)
        buffers[s].gpaKnown = true
        states.unmap(slot: s, buffer: old, time: time, silently: true)
        states.map(slot: s, buffer: buffers[s], index: old.event, time: time)
    }

    /// Offset of `address` in buffer `s` (0 when a page-granular host address precedes the buffer's start).
    @inline(__always) func offset(_ s: Int, _ address: UInt64) -> UInt64 {
        address >= buffers[s].recordedAddress ? address &- buffers[s].recordedAddress : 0
    }

    private mutating func create(
        _ d: Int, gpa: UInt64, size: UInt64, direction: DMADirection, recorded: UInt64, recordedIOVA: Bool,
        fromDMAAPI: Bool, index: Int, time: UInt64, cpu: UInt8 = 0, hold: Bool = false,
        _ states: inout some ScenarioFeed
    ) {
        let s: Int
        if let f = freeSlots.popLast() {
            s = f
        } else {
            s = buffers.count
            buffers.append(Buffer())
        }
        freeSlotsLastCreated = s
        let gen = buffers[s].generation &+ 1
        var b = Buffer(
            device: d, gpa: gpa, size: size, direction: direction, recordedAddress: recorded,
            recordedIOVA: recordedIOVA,
            fromDMAAPI: fromDMAAPI, event: index, generation: gen, retired: false, retiredAt: 0)
        b.cpu = cpu
        b.mappedAt = time
        buffers[s] = b
        let pages = PageSpan(address: recorded, size: size).count
        if pages > Self.maxPagesPerBuffer { oversizeBuffers += 1 }
        // Pages no live buffer holds take this one in runs (``BufferPageTable/fillLive(from:pages:startingAt:_:)``);
        // a page another holds is decided by ``register(_:device:address:)``, in page order as before.
        let registered = min(pages, Self.maxPagesPerBuffer)
        let firstKey = Self.key(d, recorded)
        var p = bufferPages.fillLive(from: firstKey, pages: registered, startingAt: 0, UInt32(s))
        while p < registered {
            register(s, device: d, address: (recorded >> 12 &+ p) << 12)
            p = bufferPages.fillLive(from: firstKey, pages: registered, startingAt: p &+ 1, UInt32(s))
        }
        if hold {
            if held.isEmpty { heldCPU = cpu }
            held.append(s)
            heldDevice = d
            return
        }
        // `b`, not `buffers[s]` (the same value: nothing above changes it): copying the element just written
        // out of the array again was ~4% of a one-scenario replay (`perf`: a memcpy of the fresh stores).
        states.map(slot: s, buffer: b, index: index, time: time)
        resolvePending(slot: s, &states)
    }

    /// Delivers the held maps: one IOVA range for all their segments (``Buffer/groupPages``), then the host
    /// translations that were waiting for them.
    private mutating func flushHeld(_ states: inout some ScenarioFeed) {
        let slots = held
        held.removeAll(keepingCapacity: true)
        heldDevice = -1
        guard let head = slots.first else { return }
        if slots.count > 1 {
            let start = buffers[head].recordedAddress & ~0xFFF
            let last = buffers[slots[slots.count - 1]]
            let end = (last.recordedAddress &+ max(last.size, 1) &+ 0xFFF) & ~0xFFF
            buffers[head].groupPages = UInt32(clamping: (end &- start) >> 12)
            for s in slots { buffers[s].groupOffset = (buffers[s].recordedAddress & ~0xFFF) &- start }
        }
        for s in slots { states.map(slot: s, buffer: buffers[s], index: buffers[s].event, time: buffers[s].mappedAt) }
        for s in slots { resolvePending(slot: s, &states) }
    }

    private mutating func unmap(_ s: Int, index: Int, event: Event, time: UInt64, _ states: inout some ScenarioFeed) {
        let b = buffers[s]
        if implied[b.device] {
            // No recorded device accesses: the device touched the buffer in its direction before the unmap (a read,
            // then a write; two tests rather than a loop over `[false, true]`, an array per unmap).
            if b.direction.deviceReads {
                impliedAccess(s, device: b.device, b.recordedAddress, b.size, write: false, index, event, time, &states)
            }
            if b.direction.deviceWrites {
                impliedAccess(s, device: b.device, b.recordedAddress, b.size, write: true, index, event, time, &states)
            }
        }
        let pages = min(PageSpan(address: b.recordedAddress, size: b.size).count, Self.maxPagesPerBuffer)
        // Table by table (each page's key is the first page's plus its index, wrapping as ``key(_:_:)`` does).
        let first = Self.key(b.device, b.recordedAddress)
        // Live entries that are this buffer's go, and its pages' retired entries become it: one pass.
        bufferPages.retire(from: first, pages: pages, UInt32(s))
        if shadow.count > 0 || b.movedFrom >= 0 {
            for p in 0..<pages {
                let k = Self.key(b.device, (b.recordedAddress >> 12 &+ p) << 12)
                if shadow.count > 0 { shadow.remove(k, ifValue: UInt32(s)) }
                if b.movedFrom >= 0 {
                    moved.remove(Self.key(b.movedFrom, (b.recordedAddress >> 12 &+ p) << 12), ifValue: UInt32(s))
                }
            }
        }
        // One access to the slot: five field writes checked the slab's uniqueness each.
        Self.retire(&buffers[s], time: time, cpu: Self.cpu(of: event), wide: wideInvalidations)
        if b.recordedIOVA {
            for p in 0..<pages { pageUnmaps.increment((b.recordedAddress >> 12) &+ p) }
        }
        retiredFIFO.append((s, b.generation, time))
        states.unmap(slot: s, buffer: buffers[s], time: time)
    }

    /// The access a device without recorded accesses is taken to have made of buffer `s` before its unmap `event`.
    private mutating func impliedAccess(
        _ s: Int, device: Int, _ address: UInt64, _ size: UInt64, write: Bool, _ index: Int, _ event: Event,
        _ time: UInt64, _ states: inout some ScenarioFeed
    ) {
        let ev = Event(
            kind: .hostAccess, timestamp: event.timestamp, device: UInt16(device),
            flags: write ? [.write, .implied] : [.implied], address: address, size: size, clock: event.clock,
            source: event.source, position: event.position)
        deliver(
            Access(
                device: device, slot: s, kind: .inLifetime, offset: 0, rawAddress: address, size: max(size, 1),
                write: write, recorded: .none, eventIndex: index, event: ev, time: time, implied: true), &states)
    }

    @inline(__always) private static func retire(_ b: inout Buffer, time: UInt64, cpu: UInt8, wide: UInt32) {
        b.retired = true
        b.retiredAt = time
        b.unmappedAt = time
        b.unmapCPU = cpu
        b.wideAtUnmap = wide
    }

    private mutating func deliver(_ a: Access, _ states: inout some ScenarioFeed) {
        // The generation only (a fresh `Buffer()` has 0): copying the 136-byte buffer out of the slab per access
        // was a `memcpy` call each.
        states.access(a, generation: a.slot >= 0 ? buffers[a.slot].generation : 0)
    }

    private mutating func enqueuePending(_ a: Access, _ states: inout some ScenarioFeed) {
        if pending.count - pendingHead >= Self.maxPending { expirePending(force: 1, now: 0, &states) }
        pending.append(a)
    }

    private mutating func resolvePending(slot s: Int, _ states: inout some ScenarioFeed) {
        guard pendingHead < pending.count else { return }
        let b = buffers[s]
        var i = pendingHead
        while i < pending.count {
            let a = pending[i]
            if (a.slot < 0 || a.fallbackGeneration != 0), a.slot != -2, a.device == b.device,
                case let .translated(gpa) = a.recorded,
                translates(s, iova: a.rawAddress, gpa: gpa)
            {
                learnGPA(s, iova: a.rawAddress, gpa: gpa, index: a.eventIndex, time: a.time, &states)
                var r = a
                r.slot = s
                r.kind = .inLifetime
                r.fallbackGeneration = 0
                r.offset = offset(s, a.rawAddress)
                deliver(r, &states)
                pending[i].slot = -2  // resolved
            }
            i += 1
        }
        compactPending()
    }

    private mutating func compactPending() {
        while pendingHead < pending.count && pending[pendingHead].slot == -2 { pendingHead += 1 }
        if pendingHead > 1024 && pendingHead * 2 > pending.count {
            pending.removeFirst(pendingHead)
            pendingHead = 0
        }
    }

    /// Retires buffers and gives up on pending accesses older than the skew tolerance.
    private mutating func expire(now t: UInt64, _ states: inout some ScenarioFeed) {
        let w = retainNs
        // The slab entries of the buffers about to be released were last touched ~100 ms of trace earlier and
        // are out of the cache: reading one per release below was ~9% of a one-scenario replay (`perf`), each
        // miss waited for in turn. Load the entries of up to 512 of them up front, independently of one another,
        // so their misses overlap; the result is stored only so that the loads are kept (nothing reads it).
        var touched: UInt8 = 0
        var k = retiredHead
        while k < retiredFIFO.count && k - retiredHead < 512 && retiredFIFO[k].at &+ w < t {
            let slot = retiredFIFO[k].slot
            if slot < buffers.count {
                // Each cache line of the 136-byte entry: its start (the release reads address and size), its
                // middle (the check's flags) and its end (the ambiguity check).
                let b = buffers[slot]
                touched |=
                    UInt8(truncatingIfNeeded: b.recordedAddress) | (b.retired ? 1 : 0)
                    | UInt8(truncatingIfNeeded: b.mappedAt)
            }
            k += 1
        }
        expirePrefetch = touched
        while retiredHead < retiredFIFO.count {
            let entry = retiredFIFO[retiredHead]
            guard entry.at &+ w < t || retiredFIFO.count - retiredHead > Self.maxRetired else { break }
            // A buffer resurrected (and maybe retired again) since this entry was queued is not released here.
            if buffers[entry.slot].retired && buffers[entry.slot].generation == entry.generation
                && buffers[entry.slot].retiredAt == entry.at
            {
                if let alt = buffers[entry.slot].ambiguousWith, !buffers[alt].retired,
                    buffers[alt].generation == buffers[entry.slot].ambiguousGeneration
                {
                    // Ambiguous unmap, the other candidate still live: keep it resolvable by later host evidence.
                    buffers[entry.slot].retiredAt = t
                    retiredFIFO.append((entry.slot, entry.generation, t))
                } else {
                    release(entry.slot)
                }
            }
            retiredHead += 1
        }
        if retiredHead > 4096 && retiredHead * 2 > retiredFIFO.count {
            retiredFIFO.removeFirst(retiredHead)
            retiredHead = 0
        }
        if pendingHead < pending.count { expirePending(force: 0, now: t, &states) }
    }

    private mutating func release(_ s: Int) {
        let b = buffers[s]
        let pages = min(PageSpan(address: b.recordedAddress, size: b.size).count, Self.maxPagesPerBuffer)
        bufferPages.removeRetired(from: Self.key(b.device, b.recordedAddress), pages: pages, ifValue: UInt32(s))
        freeSlots.append(s)
    }

    private mutating func expirePending(force: Int, now t: UInt64, _ states: inout some ScenarioFeed) {
        var forced = force
        while pendingHead < pending.count {
            let a = pending[pendingHead]
            if a.slot == -2 {
                pendingHead += 1
                continue
            }
            guard forced > 0 || a.time &+ skewNs < t else { break }
            forced -= 1
            giveUp(a, &states)
            pendingHead += 1
        }
        compactPending()
    }

    /// A recorded translation that matches no buffer of the guest trace.
    private mutating func giveUp(_ a: Access, _ states: inout some ScenarioFeed) {
        if a.fallbackGeneration != 0 && a.slot >= 0 && a.slot < buffers.count
            && buffers[a.slot].generation == a.fallbackGeneration
        {
            deliver(a, &states)
            return
        }
        if sawGuestMap && lastGuestMapTime >= a.time {
            unmatchedInCoverage += 1
            states.unmatched(a)
        } else {
            outsideCoverage += 1
        }
    }

    /// End of trace: pending accesses are given up, live buffers of implied devices are touched.
    mutating func finish(_ states: inout some ScenarioFeed) {
        if !held.isEmpty { flushHeld(&states) }
        if checkWorker != nil {
            states.check(
                CheckOp(
                    call: .finish, device: 0, iova: 0, size: 0, cpu: 0, time: 0, index: 0, event: Event(kind: .marker)))
        } else {
            allocatorCheck?.finish()
        }
        while pendingHead < pending.count {
            if pending[pendingHead].slot != -2 { giveUp(pending[pendingHead], &states) }
            pendingHead += 1
        }
        for s in buffers.indices where !buffers[s].retired && buffers[s].generation > 0 && buffers[s].device >= 0 {
            let b = buffers[s]
            guard implied[b.device] else { continue }
            for write in [false, true] where write ? b.direction.deviceWrites : b.direction.deviceReads {
                let ev = Event(
                    kind: .hostAccess, device: UInt16(b.device), flags: write ? [.write, .implied] : [.implied],
                    address: b.recordedAddress, size: b.size)
                deliver(
                    Access(
                        device: b.device, slot: s, kind: .inLifetime, offset: 0, rawAddress: b.recordedAddress,
                        size: max(b.size, 1), write: write, recorded: .none, eventIndex: b.event, event: ev,
                        time: 0, implied: true), &states)
            }
        }
    }
}
