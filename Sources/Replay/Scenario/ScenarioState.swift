import Models
import TraceFormat

/// How one scenario placed one buffer: the address the device was given and what it should reach.
/// 32 bytes (fields ordered for it): every access of every scenario reads one, so two share a cache line.
struct SlotView: Sendable {
    var generation: UInt32 = 0
    var valid = false
    /// The mapping failed (DMA_MAPPING_ERROR or IOVA space exhausted): the driver never submits the buffer.
    var failed = false
    /// PTE permissions: bit 0 read, bit 1 write.
    var perms: UInt8 = 3
    /// PTEs are in the scenario's page table (translated addressing).
    var mapped = false
    var devAddr: UInt64 = 0
    /// The GPA the device should reach at offset 0 (the buffer, or its swiotlb bounce slot).
    var target: UInt64 = 0
    /// The IOVA came from the simulated allocator (to be freed on unmap).
    var allocated = false
    /// Order (log2 pages) of the allocated IOVA range (``IOVAAllocator/order(_:)``).
    var allocOrder: UInt8 = 0
    /// Unmapped lazily: the IOTLB still holds it until the flush queue drains.
    var staleUntilDrain = false
    /// The guest CPU whose range cache gets the IOVA back when it is freed (the unmapping CPU).
    var freeCPU: UInt8 = 0
    var domain: Int32 = 0
}

/// The facts of an occurrence, trivially copyable: the hot path passes them and builds the ``Occurrence``
/// (which holds a source-file string) only when a group keeps it.
struct OccurrenceArgs {
    var index: Int
    var event: Event?
    var time: UInt64
    var deviceAddress: UInt64
    var buffer: UInt64?
    var size: UInt64
    var write: Bool
    var reason: UInt32?
}

/// Sub-keys of outcome groups, as small codes on the hot path (names in ``GroupAcc/tagNames``).
enum Tag: UInt8, Sendable {
    case none, stray, iovaUsedAsGPA, gpaHitAnotherMapping, wrongAddress, iovaExhausted, dmaMappingError
    case unmapAfterFailedMap, bounceDoesNotFit

    var name: String {
        switch self {
        case .none: ""
        case .stray: "stray"
        case .iovaUsedAsGPA: "iova-used-as-gpa"
        case .gpaHitAnotherMapping: "gpa-hit-another-mapping"
        case .wrongAddress: "wrong-address"
        case .iovaExhausted: "iova-exhausted"
        case .dmaMappingError: "dma-mapping-error"
        case .unmapAfterFailedMap: "unmap-after-failed-map"
        case .bounceDoesNotFit: "bounce-does-not-fit"
        }
    }
}

/// The identity of a group, trivially copyable so the per-access search touches no reference counts.
struct GroupKey: Sendable, Equatable {
    var outcome: OutcomeClass
    var reason: UInt32?
    var write: Bool
    var stray: Bool
    var tag: Tag
}

/// The per-access part of a ``DevicePlan`` (no strings), read on every operation.
struct PlanHot: Sendable {
    var blocked: Bool
    var addressing: Addressing
    var translated: Bool
    var claimed: Bool
    var lazy: Bool
}

struct GroupAcc: Sendable {
    var outcome: OutcomeClass
    var reason: UInt32?
    var write: Bool
    var stray: Bool
    var tag: Tag
    var count = 0
    /// How many of ``count`` are device accesses (``ScenarioState/access(_:generation:)``), not device-level
    /// outcomes: a device's accesses are the sum over its groups (``ScenarioState/accesses``).
    var accesses = 0
    var first: Occurrence?
    var worst: Occurrence?
    var worstSize: UInt64 = 0
    var guestLog: [String] = []
    var hostLog: [String] = []
    var records = 0

    /// Counts one more outcome (an access when `access`), in one update of the group.
    @inline(__always) mutating func add(access: Bool) {
        count += 1
        accesses += access ? 1 : 0
    }
}

/// The state machine of one scenario (docs/replay.md): per-device plans from negotiation, the simulated
/// allocator, page tables and flush queue, and the outcome groups. Every scenario is fed the same
/// reconstructed operations from one decode pass.
struct ScenarioState: OutcomeLedger {
    let scenario: Scenario
    let isRecorded: Bool
    let facts: [DeviceFacts]
    let plans: [DevicePlan]
    let hot: [PlanHot]
    let options: ReplayOptions
    let inputs: [String]
    /// Scalars read on every operation, copied out of the models so the hot path touches no reference counts.
    let domainOf: [Int]
    let awBits: Int
    let silentNotPresent: Bool
    let flushTimeoutNs: UInt64
    let flushEntries: Int
    /// Fault reason per ``FaultCause`` raw value under this scenario's vIOMMU.
    let reasons: (UInt32, UInt32, UInt32, UInt32)

    var pageTable = PageTable()
    var allocators: [IOVAAllocator?]
    /// This scenario's slot views live in lane `lane` of the replay's shared table.
    let viewTable: ViewTable
    let lane: Int
    /// amd-iommu with NpCache: Linux flushes the IOTLB after every map too (`amd_iommu_iotlb_sync_map()` ->
    /// `domain_flush_np_cache()`, drivers/iommu/amd/iommu.c at v6.1; `amd_iommu_map()` at v5.10).
    let flushOnMap: Bool
    var lazyQueue: [(slot: Int, generation: UInt32)] = []
    var lazyQueueStart: UInt64 = 0
    var contextUp: [Bool]
    var groups: [[GroupAcc]]
    var groupKeys: [[GroupKey]]
    /// Accesses per device (by device index): counted in the groups, where an access already writes. A separate
    /// per-device counter cost each access of each simulated scenario one more array update: the full built-in
    /// matrix of 1M synthetic events took 9.17 G instructions with it, 8.93 G without (`valgrind --tool=callgrind`).
    var accesses: [Int] { groups.map { $0.reduce(0) { $0 + $1.accesses } } }
    var lastRecord: [UInt64?]
    var predictedRecords: [(device: Int, page: UInt64, reason: UInt32)] = []
    var divergences: [Divergence] = []
    var divergenceCount = 0
    /// The predicted stream (``ReplayOptions/collectStream``).
    var stream: StreamCollector?
    /// The IOVA range the last allocation placed (the first segment of a multi-segment DMA-API call), for the
    /// segments that follow it (``Buffer/groupOffset``).
    var groupHead: (domain: Int, base: UInt64?) = (-1, nil)
    /// Recorded outcomes the fidelity check compared (translations, faults, guest fault lines, probe failures,
    /// allocations).
    var fidelityChecked = 0
    var unmatched = 0
    /// Scenarios simulated inside this one, which differ from it only in fault reporting (``FaultSibling``).
    var siblings: [FaultSibling] = []

    static let maxLogLines = 12
    static let maxPredictedRecords = 100_000

    init(
        scenario: Scenario, isRecorded: Bool, facts: [DeviceFacts], recordedSetting: GuestIOMMUSetting?,
        options: ReplayOptions, inputs: [String], viewTable: ViewTable, lane: Int
    ) {
        self.viewTable = viewTable
        self.lane = lane
        var sc = scenario
        sc.enabledHypotheses.formUnion(options.hypotheses)
        self.scenario = sc
        self.isRecorded = isRecorded
        self.facts = facts
        let plans = facts.map { DevicePlan.make(device: $0, scenario: sc, recordedSetting: recordedSetting) }
        self.plans = plans
        self.hot = plans.map {
            PlanHot(
                blocked: $0.blocked != nil, addressing: $0.addressing, translated: $0.translated, claimed: $0.claimed,
                lazy: $0.guestIOMMU == .lazy)
        }
        self.options = options
        self.inputs = inputs
        flushOnMap = sc.mode.viommu == "amd-iommu" && sc.mode.npCache == true
        domainOf = facts.map(\.domain)
        awBits = sc.mode.awBits
        silentNotPresent = sc.mode.faults.silentNotPresent == true
        flushTimeoutNs = UInt64(sc.kernel.iommu.flushQueue.timeoutMs) * 1_000_000
        flushEntries = sc.kernel.iommu.flushQueue.entries
        let v = sc.mode.viommu
        reasons = (
            FaultFormat.reason(.noContext, viommu: v), FaultFormat.reason(.beyondWidth, viommu: v),
            FaultFormat.reason(.read, viommu: v), FaultFormat.reason(.write, viommu: v)
        )
        let domains = (facts.map(\.domain).max() ?? -1) + 1
        allocators = Array(repeating: nil, count: domains)
        contextUp = plans.map { $0.contextAtBoot }
        groups = Array(repeating: [], count: facts.count)
        groupKeys = Array(repeating: [], count: facts.count)
        lastRecord = Array(repeating: nil, count: facts.count)
        if options.collectStream { stream = StreamCollector(devices: facts.count) }
    }

    /// This scenario (fresh) with the outcome of `simulated`, a scenario of the same ``SimulationKey`` class
    /// replayed in its place: the groups, counts, log lines and stream it reached, under this scenario's own
    /// models and plans (which the report renders). The simulation's working state (page table, allocators,
    /// views) is not carried over: the replay is over.
    func adopting(_ simulated: ScenarioState) -> ScenarioState {
        var s = self
        s.contextUp = simulated.contextUp
        s.groups = simulated.groups
        s.groupKeys = simulated.groupKeys
        s.lastRecord = simulated.lastRecord
        s.predictedRecords = simulated.predictedRecords
        s.divergences = simulated.divergences
        s.divergenceCount = simulated.divergenceCount
        s.stream = simulated.stream
        s.fidelityChecked = simulated.fidelityChecked
        s.unmatched = simulated.unmatched
        return s
    }

    /// This scenario (fresh) with the outcome of `sibling`, simulated inside `primary` (``FaultSibling``): the
    /// primary's groups but its faults, the sibling's faults and fault records.
    func adopting(_ primary: ScenarioState, sibling: FaultSibling) -> ScenarioState {
        var s = adopting(primary)
        for d in s.groups.indices {
            let kept = s.groups[d].indices.filter { s.groups[d][$0].outcome != .fault }
            s.groups[d] = kept.map { s.groups[d][$0] } + sibling.groups[d]
            s.groupKeys[d] = kept.map { s.groupKeys[d][$0] } + sibling.groupKeys[d]
        }
        s.lastRecord = sibling.lastRecord
        s.predictedRecords = sibling.predictedRecords
        return s
    }

    // MARK: Driver side

    /// Swiotlb bounce pool as modelled: 64 MiB of 2 KiB slots below 4 GiB ([D]: the device sees the bounce
    /// slot's GPA, never the buffer's).
    static let bounceBase: UInt64 = 0xBC00_0000
    static let bounceSlots: UInt64 = (64 << 20) / 2048

    mutating func map(slot s: Int, buffer b: Buffer, index: Int, time: UInt64) {
        viewTable.ensure(s)
        var v = SlotView(generation: b.generation, valid: true)
        let plan = hot[b.device]
        guard !plan.blocked else {
            v.valid = false
            view(s).pointee = v
            return
        }
        let domain = domainOf[b.device]
        v.domain = Int32(truncatingIfNeeded: domain)
        v.perms = b.direction == .toDevice ? 1 : (b.direction == .fromDevice ? 2 : 3)
        switch plan.addressing {
        case .gpa, .identity:
            v.devAddr = b.gpa
            v.target = b.gpa
        case .bounce:
            if b.size > Self.bounceSegmentBytes {
                bounceDoesNotFit(buffer: b, index: index, time: time)
                v.failed = true
                view(s).pointee = v
                return
            }
            v.devAddr = Self.bounceBase + (UInt64(s) % Self.bounceSlots) * 2048
            v.target = v.devAddr
            if stream != nil { stream!.devices[b.device].bounces += 1 }
        case .iova, .bounceIOVA:
            v.target = plan.addressing == .bounceIOVA ? Self.bounceBase + (UInt64(s) % Self.bounceSlots) * 2048 : b.gpa
            if isRecorded && b.recordedIOVA && plan.addressing == .iova {
                v.devAddr = b.recordedAddress
            } else if b.groupOffset > 0 && groupHead.domain == domain {
                // A later segment of one DMA-API call: inside the range its first segment allocated.
                guard let base = groupHead.base else {
                    v.failed = true
                    view(s).pointee = v
                    return
                }
                v.devAddr = (base &+ b.groupOffset) | (v.target & 0xFFF)
            } else {
                let size = b.groupPages > 0 ? UInt64(b.groupPages) << 12 : (v.target & 0xFFF) &+ max(b.size, 1)
                groupHead = (domain, nil)
                // (`allocators[domain] == nil` would copy the allocator, retaining each of its arrays, per map.)
                if allocators[domain]?.endPfn == nil {
                    allocators[domain] = IOVAAllocator(
                        addressWidth: awBits, below4GFirst: scenario.kernel.iommu.iovaBelow4GFirst,
                        cache: scenario.kernel.iommu.iovaCacheInEffect)
                }
                guard let iova = allocators[domain]!.allocate(size: size, cpu: Int(b.cpu)) else {
                    v.failed = true
                    view(s).pointee = v
                    record(
                        .mappingFailed, device: b.device, reason: nil, write: false, stray: false, tag: .iovaExhausted,
                        size: b.size,
                        at: OccurrenceArgs(
                            index: index, event: nil, time: time, deviceAddress: 0, buffer: b.gpa, size: b.size,
                            write: false, reason: nil))
                    return
                }
                v.devAddr = iova | (v.target & 0xFFF)
                v.allocated = true
                v.allocOrder = UInt8(IOVAAllocator.order(size))
                groupHead = (domain, iova)
            }
            let pages = min(PageSpan(address: v.devAddr, size: b.size).count, IntentTracker.maxPagesPerBuffer)
            pageTable.set(from: ptKey(domain, v.devAddr), pages: pages, UInt32(s))
            v.mapped = true
            // Written once: an array write checks the array's uniqueness on every map of every scenario.
            if !contextUp[b.device] { contextUp[b.device] = true }
            if stream != nil {
                stream!.devices[b.device].maps += 1
                if flushOnMap { stream!.invalidations += 1 }
                if plan.addressing == .bounceIOVA { stream!.devices[b.device].bounces += 1 }
                if stream!.devices[b.device].iovas.count < StreamMetrics.maxIOVAs {
                    stream!.devices[b.device].iovas.append(v.devAddr & ~0xFFF)
                }
            }
        case .mappingError:
            v.failed = true
            view(s).pointee = v
            record(
                .mappingFailed, device: b.device, reason: nil, write: false, stray: false, tag: .dmaMappingError,
                size: b.size,
                at: OccurrenceArgs(
                    index: index, event: nil, time: time, deviceAddress: 0, buffer: b.gpa, size: b.size, write: false,
                    reason: nil))
            failedMapOops(buffer: b, index: index, time: time)
            return
        }
        view(s).pointee = v
    }

    /// `silently`: the buffer moves to another device (ingest attribution corrected): no flush-queue stay.
    mutating func unmap(slot s: Int, buffer b: Buffer, time: UInt64, silently: Bool = false) {
        guard s < viewTable.count, view(s).pointee.valid, view(s).pointee.generation == b.generation else { return }
        drainIfDue(time)
        var v = view(s).pointee
        if silently { v.valid = false }
        if v.mapped {
            let pages = min(PageSpan(address: v.devAddr, size: b.size).count, IntentTracker.maxPagesPerBuffer)
            pageTable.remove(from: ptKey(Int(v.domain), v.devAddr), pages: pages, ifValue: UInt32(s))
            v.mapped = false
            v.freeCPU = b.unmapCPU
            if stream != nil {
                if silently {
                    stream!.devices[b.device].maps -= 1  // moved or re-placed: mapped again at once
                } else {
                    stream!.devices[b.device].unmaps += 1
                    if !hot[b.device].lazy { stream!.invalidations += 1 }
                }
            }
            if hot[b.device].lazy && !silently {
                v.staleUntilDrain = true
                if lazyQueue.isEmpty { lazyQueueStart = time }
                lazyQueue.append((s, b.generation))
                view(s).pointee = v
                if lazyQueue.count >= flushEntries { drain() }
                return
            }
            if v.allocated {
                allocators[Int(v.domain)]?.free(v.devAddr & ~0xFFF, order: Int(v.allocOrder), cpu: Int(v.freeCPU))
            }
            v.allocated = false
        }
        view(s).pointee = v
    }

    private mutating func drainIfDue(_ time: UInt64) {
        if !lazyQueue.isEmpty && time >= lazyQueueStart &+ flushTimeoutNs { drain() }
    }

    /// The flush queue drains: stale IOTLB entries disappear and their IOVAs become reusable.
    private mutating func drain() {
        if stream != nil && !lazyQueue.isEmpty { stream!.invalidations += 1 }
        for (s, g) in lazyQueue where s < viewTable.count {
            let v = view(s)
            guard v.pointee.generation == g && v.pointee.staleUntilDrain else { continue }
            v.pointee.staleUntilDrain = false
            if v.pointee.allocated {
                let (domain, iova, order) = (
                    Int(v.pointee.domain), v.pointee.devAddr & ~0xFFF, Int(v.pointee.allocOrder)
                )
                allocators[domain]?.free(iova, order: order, cpu: Int(v.pointee.freeCPU))
                v.pointee.allocated = false
            }
        }
        lazyQueue.removeAll(keepingCapacity: true)
    }

    @inline(__always) func view(_ s: Int) -> UnsafeMutablePointer<SlotView> { viewTable.view(s, lane) }

    @inline(__always) func ptKey(_ domain: Int, _ address: UInt64) -> UInt64 {
        UInt64(truncatingIfNeeded: domain) << 48 | ((address >> 12) & 0xFFFF_FFFF_FFFF)
    }

    // MARK: Device side

    mutating func access(_ a: Access, generation: UInt32) {
        let plan = hot[a.device]
        guard !plan.blocked else {
            if isRecorded {
                recordedButNotPredicted(
                    a,
                    why:
                        "the scenario predicts the device never works (\(plans[a.device].blocked?.rawValue ?? "blocked"))"
                )
            }
            return
        }
        let bypassContradicted = isRecorded && !plan.translated && a.recorded.isHostEvidence
        if bypassContradicted {
            // The vIOMMU translated (or blocked) this device's DMA: a scenario where it bypasses translation is wrong.
            recordedButNotPredicted(a, why: "the scenario predicts the device's DMA bypasses the vIOMMU")
        }
        drainIfDue(a.time)
        var devAddr = a.rawAddress
        var intended: UInt64?
        var own = false
        var stale = false
        var perms: UInt8 = 3
        if a.kind != .stray {
            guard a.slot < viewTable.count, view(a.slot).pointee.valid, view(a.slot).pointee.generation == generation
            else { return }
            let v = view(a.slot).pointee
            if v.failed { return }  // the driver saw the mapping error and never submitted the buffer
            devAddr = v.devAddr &+ a.offset
            intended = v.target &+ a.offset
            perms = v.perms
            own = a.kind == .inLifetime && (plan.addressing == .iova || plan.addressing == .bounceIOVA)
            // The recorded scenario follows the recorded invalidations; other scenarios their own flush model.
            stale = (a.kind == .postUnmap || (a.kind == .afterInvalidation && !isRecorded)) && v.staleUntilDrain
        }
        var reached: UInt64 = devAddr
        var cause: FaultCause?
        var notPresent = false
        if plan.translated {
            let aw = awBits
            if !contextUp[a.device] {
                cause = .noContext
            } else if aw < 64 && devAddr >> UInt64(aw) != 0 {
                cause = .beyondWidth
            } else if own {
                reached = intended!
                if a.write ? perms & 2 == 0 : perms & 1 == 0 { cause = a.write ? .write : .read }
            } else if let hit = pageTable.get(ptKey(domainOf[a.device], devAddr)).map(Int.init), hit < viewTable.count,
                view(hit).pointee.mapped
            {
                let v2 = view(hit).pointee
                reached = v2.target &+ (devAddr &- v2.devAddr)
                if a.write ? v2.perms & 2 == 0 : v2.perms & 1 == 0 { cause = a.write ? .write : .read }
            } else if stale {
                reached = intended!
            } else {
                cause = a.write ? .write : .read
                stale = false
                notPresent = true
            }
        }
        if cause != nil { stale = false }

        let outcome: OutcomeClass
        var reason: UInt32?
        var tag = Tag.none
        if cause != nil {
            outcome = .fault
        } else if let intended, reached == intended {
            outcome = stale ? .stale : (plan.claimed ? .untranslatedWhileClaimed : .ok)
        } else {
            outcome = .misdirected
            if a.kind == .stray {
                tag = .stray
            } else if !plan.translated && (plan.addressing == .iova || plan.addressing == .bounceIOVA) {
                tag = .iovaUsedAsGPA
            } else if plan.translated && plan.addressing == .gpa {
                tag = .gpaHitAnotherMapping
            } else {
                tag = .wrongAddress
            }
        }
        // The occurrence's facts, built only where they are kept (a new group, a worse access, a fidelity check).
        func at() -> OccurrenceArgs {
            OccurrenceArgs(
                index: a.eventIndex, event: a.event, time: a.time, deviceAddress: devAddr, buffer: intended,
                size: a.size, write: a.write, reason: reason)
        }
        if let cause {
            reason = fault(
                cause, notPresent: notPresent, device: a.device, stray: a.kind == .stray, write: a.write,
                size: a.size, address: devAddr, time: a.time, at: at())
            for k in siblings.indices {
                siblings[k].fault(
                    cause, notPresent: notPresent, device: a.device, stray: a.kind == .stray, write: a.write,
                    size: a.size, address: devAddr, time: a.time, at: at())
            }
        } else {
            record(
                outcome, device: a.device, reason: nil, write: false, stray: a.kind == .stray, tag: tag, size: a.size,
                access: true, at: at())
        }
        if stream != nil && plan.translated {
            if outcome == .fault, let reason {
                stream!.fault(device: a.device, reason: reason, address: devAddr)
            } else if outcome != .fault {
                stream!.devices[a.device].translations += 1
            }
        }
        if isRecorded && !bypassContradicted {
            checkFidelity(a, outcome: outcome, reason: reason, reached: reached, devAddr: devAddr, at: at())
        }
    }

    private mutating func checkFidelity(
        _ a: Access, outcome: OutcomeClass, reason: UInt32?, reached: UInt64, devAddr: UInt64,
        at args: OccurrenceArgs
    ) {
        if case .none = a.recorded { return }
        fidelityChecked += 1
        switch a.recorded {
        case .none:
            return
        case let .translated(gpa):
            if (a.kind == .postUnmap || a.kind == .afterInvalidation) && outcome == .fault {
                let late = a.time >= lastUnmapTime(a) ? a.time - lastUnmapTime(a) : 0
                diverge(
                    "recorded translation \(Hex.prefixed(a.rawAddress)) -> \(Hex.prefixed(gpa)) came \(ms(late)) after the buffer's unmap (skew window \(ms(options.skewToleranceNs ?? 0))\(a.kind == .afterInvalidation ? ", after the host recorded its IOTLB invalidation" : "")): a device access after the unmap (\(hot[a.device].lazy ? "the flush queue had drained" : "strict invalidation"))",
                    device: a.device, at: occurrence(args))
            } else if outcome == .fault || outcome == .misdirected
                || !IntentTracker.samePage(reported: gpa, reached: reached, iova: devAddr)
            {
                let predicted =
                    outcome == .fault
                    ? "a fault (reason \(Hex.prefixed(UInt64(reason ?? 0))))" : "GPA \(Hex.prefixed(reached))"
                diverge(
                    "recorded translation \(Hex.prefixed(a.rawAddress)) -> \(Hex.prefixed(gpa)) not reproduced: predicted \(predicted)",
                    device: a.device, at: occurrence(args))
            }
        case let .fault(r):
            if outcome != .fault || reason != r {
                let predicted = outcome == .fault ? "reason \(Hex.prefixed(UInt64(reason ?? 0)))" : outcome.rawValue
                diverge(
                    "recorded fault reason \(Hex.prefixed(UInt64(r))) at \(Hex.prefixed(devAddr)) not reproduced: predicted \(predicted)",
                    device: a.device, at: occurrence(args))
            }
        }
    }

    private func lastUnmapTime(_ a: Access) -> UInt64 { a.unmappedAt }

    /// A recorded host translation or fault the scenario cannot produce at all.
    private mutating func recordedButNotPredicted(_ a: Access, why: String) {
        fidelityChecked += 1
        let what: String
        switch a.recorded {
        case let .translated(gpa): what = "recorded translation \(Hex.prefixed(a.rawAddress)) -> \(Hex.prefixed(gpa))"
        case let .fault(r): what = "recorded fault reason \(Hex.prefixed(UInt64(r))) at \(Hex.prefixed(a.rawAddress))"
        case .none: return
        }
        diverge(
            "\(what) not reproduced: \(why)", device: a.device,
            at: occurrence(
                index: a.eventIndex, event: a.event, time: a.time, deviceAddress: a.rawAddress, buffer: nil,
                size: a.size, write: a.write, reason: nil))
    }

    private func ms(_ ns: UInt64) -> String {
        let v = Double(ns) / 1e6
        return v >= 10 ? "\(Int(v.rounded())) ms" : "\(Double(Int(v * 100)) / 100) ms"
    }

    /// True when `reached` lies in the IOMMU page the host recorded at `gpa`: the same 4 KiB page, or a larger
    /// power-of-two page based at `gpa` (AMD-Vi prints the base of the PTE's page size, up to 2 MiB here).
    static func inRecordedPage(_ reached: UInt64, _ gpa: UInt64) -> Bool {
        if reached >> 12 == gpa >> 12 { return true }
        var size: UInt64 = 0x2000
        while size <= 0x20_0000 && gpa & (size - 1) == 0 {
            if reached & ~(size - 1) == gpa { return true }
            size <<= 1
        }
        return false
    }

    mutating func diverge(_ what: String, device: Int?, at occ: Occurrence) {
        divergenceCount += 1
        if divergences.count < options.maxDivergences {
            divergences.append(Divergence(what: what, device: device.map { facts[$0].name }, at: occ))
        }
    }

    /// A recorded host translation inside the guest trace's coverage that matches no recorded mapping.
    mutating func unmatched(_ a: Access) {
        unmatched += 1
        if isRecorded {
            let occ = occurrence(
                index: a.eventIndex, event: a.event, time: a.time, deviceAddress: a.rawAddress, buffer: nil,
                size: a.size, write: a.write, reason: nil)
            if case let .translated(gpa) = a.recorded {
                diverge(
                    "recorded translation \(Hex.prefixed(a.rawAddress)) -> \(Hex.prefixed(gpa)) matches no mapping of the guest trace",
                    device: a.device, at: occ)
            }
        }
    }

    // MARK: Bookkeeping

    func occurrence(
        index: Int, event: Event?, time: UInt64, deviceAddress: UInt64, buffer: UInt64?, size: UInt64,
        write: Bool, reason: UInt32?
    ) -> Occurrence {
        Self.occurrence(
            inputs: inputs, index: index, event: event, time: time, deviceAddress: deviceAddress, buffer: buffer,
            size: size, write: write, reason: reason)
    }

    static func occurrence(
        inputs: [String], index: Int, event: Event?, time: UInt64, deviceAddress: UInt64, buffer: UInt64?,
        size: UInt64, write: Bool, reason: UInt32?
    ) -> Occurrence {
        let src = event.flatMap { Int($0.source) < inputs.count ? inputs[Int($0.source)] : nil }
        return Occurrence(
            eventIndex: index, timestamp: event?.timestamp ?? time, sourceFile: src,
            sourcePosition: src == nil ? nil : event?.position, deviceAddress: deviceAddress, bufferAddress: buffer,
            size: size, write: write, reason: reason)
    }
}
