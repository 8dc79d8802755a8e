import Models
import TraceFormat

/// Replays one trace under any number of scenarios in one decode pass (docs/replay.md).
///
/// ```swift
/// let catalog = try ModelCatalog.load(userDirectories: [])
/// let scenarios = try ["linux-4.0-bypass@qemu-viommu-virtio-translated"].map { try Scenario.parse($0, catalog: catalog) }
/// let engine = ReplayEngine(scenarios: scenarios, recorded: try? RecordedScenario.infer(metadata: m, catalog: catalog).get())
/// let result = try engine.run(source, tracePath: "run.dmat")
/// ```
public struct ReplayEngine: Sendable {
    /// The scenarios, in output order.
    public var scenarios: [Scenario]
    /// The scenario the trace was recorded under, if known: any requested scenario equal to it is replayed
    /// with the recorded IOVAs and checked for fidelity.
    public var recorded: Scenario?
    /// Options.
    public var options: ReplayOptions
    /// What a pass over the trace showed before the replay (``ScenarioEvidence/scan(_:)``): fills the scenario
    /// facts the metadata is silent about (never overrides it). Contradictions are found during the replay
    /// either way.
    public var evidence: ScenarioEvidence?
    /// The class of a scenario's ``SimulationKey`` (the key itself); tests replace it with a coarser one to show
    /// that the comparison of deduplicated and exhaustive replays catches a key that misses something.
    var classKey: @Sendable (SimulationKey) -> SimulationKey = { $0 }
    /// The projection of a class's key under which classes share one simulation as ``FaultSibling``s (tests
    /// replace it to show the comparison catches one that merges too much).
    var siblingKey: @Sendable (SimulationKey) -> SimulationKey = { $0.withoutFaultReporting }

    public init(
        scenarios: [Scenario], recorded: Scenario? = nil, options: ReplayOptions = ReplayOptions(),
        evidence: ScenarioEvidence? = nil
    ) {
        self.scenarios = scenarios
        self.recorded = recorded
        self.options = options
        self.evidence = evidence
    }

    /// True when `s` is the recorded scenario (same models; guest IOMMU and `swiotlb=force` as recorded).
    func isRecorded(_ s: Scenario, recordedSetting: GuestIOMMUSetting?, recordedSwiotlbForced: Bool) -> Bool {
        guard let r = recorded else { return false }
        return s.kernel.id == r.kernel.id && s.mode.id == r.mode.id && s.devices == r.devices
            && (s.guestIOMMU == nil || s.guestIOMMU == (r.guestIOMMU ?? recordedSetting))
            && (s.swiotlbForced ?? recordedSwiotlbForced) == (r.swiotlbForced ?? recordedSwiotlbForced)
    }

    /// Replays `source`; `tracePath` is reported as given. When the recorded scenario's IOVA allocator check
    /// diverges, the replay runs again with the next, wider search of ``ReplayOptions/allocatorSearch`` (if
    /// `source` can be read again) and keeps the run with fewer divergences.
    public func run(_ source: some EventSource, tracePath: String) throws -> ReplayResult {
        let budgets = options.allocatorSearch.isEmpty ? [AllocatorCheck.defaultHypotheses] : options.allocatorSearch
        var (best, diverged, allocations) = try run(source, tracePath: tracePath, hypotheses: budgets[0])
        var tried: [(Int, Int)] = [(budgets[0], diverged)]
        let rereadable = (source as? TraceReader)?.canReadAgain ?? true
        var notTried: Int?
        for budget in budgets.dropFirst() where diverged > 0 && rereadable {
            let (work, overflow) = UInt64(allocations).multipliedReportingOverflow(by: UInt64(budget))
            if let bound = options.allocatorSearchWork, overflow || work > bound {
                notTried = budget
                break
            }
            let (next, count, _) = try run(source, tracePath: tracePath, hypotheses: budget)
            tried.append((budget, count))
            if count < diverged { (best, diverged) = (next, count) }
        }
        if let budget = notTried, let bound = options.allocatorSearchWork {
            let asked = (tried.map(\.0) + [budget]).map(String.init).joined(separator: ",")
            best.notes.append(
                "the IOVA allocator check did not search with \(budget) hypotheses per domain: \(allocations) "
                    + "allocations × \(budget) is above its work bound of \(bound) (--allocator-search \(asked) asks for it)"
            )
        }
        if diverged > 0 && !rereadable && budgets.count > 1 {
            best.notes.append(
                "the IOVA allocator check did not search again with a wider beam: the trace comes from standard "
                    + "input, which can be read only once (give it as a file)")
        }
        if tried.count > 1 {
            let counts = tried.map { "\($0.1) with \($0.0)" }.joined(separator: ", ")
            best.notes.append(
                "the IOVA allocator check searched again with a wider beam of timer/CPU hypotheses per domain "
                    + "(divergences: \(counts)); the run with the fewest is reported")
        }
        return best
    }

    /// One replay with the allocator check keeping `hypotheses` per domain; also returns the check's divergences.
    private func run(_ source: some EventSource, tracePath: String, hypotheses: Int) throws -> (
        ReplayResult, divergences: Int, allocations: Int
    ) {
        let metadata = evidence.map { $0.apply(to: source.metadata) } ?? source.metadata
        var seen = ScenarioEvidence()
        seen.devices = Array(repeating: ScenarioEvidence.DeviceCounts(), count: metadata.devices.count)
        var options = self.options
        options.skewToleranceNs = options.skewToleranceNs ?? IntentTracker.derivedSkewNs(metadata)
        let facts = DeviceFacts.build(from: metadata)
        let recordedSetting = GuestIOMMUSetting(capture: metadata.capture)
        let inputs = metadata.inputs.map(\.path)
        // Several scenarios with a second core: this thread reconstructs the operations and replays the first
        // `local` scenarios, a worker thread the rest. One scenario, or one core: everything here, each
        // operation applied at once.
        // Scenarios that behave alike are simulated once (``SimulationKey``): `simulated` holds the index of the
        // first scenario of each class, `classOf` each scenario's class by that index. `fresh` are the states
        // of every scenario before the replay (cheap: the plans), which adopt their class's outcome afterwards.
        let recordedFlags = scenarios.map {
            isRecorded(
                $0, recordedSetting: recordedSetting,
                recordedSwiotlbForced: metadata.capture.swiotlbForced == true)
        }
        let freshViews = ViewTable(lanes: 1)
        let fresh = scenarios.indices.map {
            ScenarioState(
                scenario: scenarios[$0], isRecorded: recordedFlags[$0], facts: facts, recordedSetting: recordedSetting,
                options: options, inputs: inputs, viewTable: freshViews, lane: 0)
        }
        // Classes that differ only in fault reporting share one simulation: `siblingsOf` holds, per simulated
        // scenario, the classes that ride along as its ``FaultSibling``s (not with a collected stream, which counts
        // faults by reason and amd-iommu's flushes at map).
        var classOf = Array(scenarios.indices)
        var simulated: [Int] = []
        var firstOfClass: [SimulationKey: Int] = [:]
        var primaryOf: [SimulationKey: Int] = [:]
        var siblingsOf: [Int: [Int]] = [:]
        for i in scenarios.indices {
            if options.deduplicate {
                let key = classKey(SimulationKey(fresh[i], index: i))
                if let j = firstOfClass[key] {
                    classOf[i] = j
                    continue
                }
                firstOfClass[key] = i
                if !options.collectStream {
                    let shared = siblingKey(key)
                    if let p = primaryOf[shared] {
                        siblingsOf[p, default: []].append(i)
                        continue
                    }
                    primaryOf[shared] = i
                }
            }
            simulated.append(i)
        }
        let n = simulated.count
        let threads = options.scenarioThreads ?? NativeThread.onlineCPUs
        let threaded = n >= 2 && threads >= 2
        // With only two cores, this thread and the worker take both: a third thread decompressing chunks
        // would only steal time from them, so this thread decompresses too (measured with 8 scenarios on 10M
        // events: 5-8% less wall time, less spread between runs).
        var inlineDecode: (reader: TraceReader, threads: Int)?
        if threaded && NativeThread.onlineCPUs <= 2, let reader = source as? TraceReader, reader.decodeThreads > 1 {
            inlineDecode = (reader, reader.decodeThreads)
            reader.decodeThreads = 1
        }
        defer { if let d = inlineDecode { d.reader.decodeThreads = d.threads } }
        // Even split by cost: this thread takes the first simulated scenarios up to the point where its work
        // (reconstruction, batching, decompression, its scenarios) best matches the worker's (the rest), each
        // scenario weighted by what its devices' addressing costs (``simulationWeight(_:)``).
        let local =
            threaded
            ? Self.localShare(
                simulated.map {
                    Self.simulationWeight(fresh[$0]) + Self.siblingWeight * Double(siblingsOf[$0]?.count ?? 0)
                }) : n
        func makeStates(_ range: Range<Int>) -> [ScenarioState] {
            let views = ViewTable(lanes: range.count)
            return range.map {
                let i = simulated[$0]
                var s = ScenarioState(
                    scenario: scenarios[i], isRecorded: recordedFlags[i], facts: facts,
                    recordedSetting: recordedSetting,
                    options: options, inputs: inputs, viewTable: views, lane: $0 - range.lowerBound)
                s.siblings = (siblingsOf[i] ?? []).map { FaultSibling(fresh[$0]) }
                return s
            }
        }
        var states = makeStates(0..<local)
        var intent = IntentTracker(facts: facts, metadata: metadata, options: options)
        // The recorded scenario's allocator check runs whenever the recorded scenario is known (requested or not):
        // it also tells which iommu:map events are segments of one DMA-API call, for every scenario's allocator.
        if let s = recorded {
            // The setting in effect (a driver may ignore `iommu.strict=1` or force strict).
            let setting = (s.guestIOMMU ?? recordedSetting).map { _ in s.effectiveSetting(recorded: recordedSetting) }
            if setting?.translates == true {
                intent.allocatorCheck = AllocatorCheck(
                    lazy: setting == .lazy, flushTimeoutMs: s.kernel.iommu.flushQueue.timeoutMs,
                    flushEntries: s.kernel.iommu.flushQueue.entries, addressWidth: s.mode.awBits,
                    below4GFirst: s.kernel.iommu.iovaBelow4GFirst, cache: s.kernel.iommu.iovaCacheInEffect,
                    cpus: metadata.capture.guestCPUs ?? 1, hypotheses: hypotheses, domainOf: facts.map(\.domain))
            }
        }
        if local < n, let worker = ScenarioWorker(states: makeStates(local..<n)) {
            var log = OpLog()
            // The log's operations are applied to this thread's scenarios, then to the worker's (it holds no
            // allocator check calls here: the check runs on this thread).
            var noCheck: AllocatorCheck? = nil
            do {
                try source.forEachEvent { i, e in
                    seen.add(e)
                    intent.handle(i, e, &log)
                    if log.isFull {
                        log.apply(to: &states, check: &noCheck)
                        worker.submit(&log)
                    }
                }
            } catch {
                _ = worker.finish()
                throw error
            }
            intent.finish(&log)
            log.apply(to: &states, check: &noCheck)
            worker.submit(&log)
            states += worker.finish().states
        } else if threads >= 2, local <= 1, let check = intent.allocatorCheck,
            let worker = ScenarioWorker(states: [], check: check)
        {
            // One simulated scenario with a second processor: the scenario replays here, operation by operation
            // (logging its operations for another thread costs more than applying them), and the allocator check
            // on the worker (``IntentTracker/checkWorker``): about a fifth of this thread's instructions (1M
            // synthetic events: 1.41 G -> 1.19 G on this thread, 0.28 G on the worker, `valgrind --tool=callgrind
            // --separate-threads=yes`; 10M events: 0.90 -> 0.74 s wall, same CPU time, median of 7 interleaved runs).
            intent.allocatorCheck = nil
            intent.checkWorker = worker
            var feed = CheckQueueFeed(states: states)
            states = []
            do {
                try source.forEachEvent { i, e in
                    seen.add(e)
                    intent.handle(i, e, &feed)
                    if feed.isFull { worker.submit(&feed.log) }
                }
            } catch {
                _ = worker.finish()
                throw error
            }
            intent.finish(&feed)
            worker.submit(&feed.log)
            let done = worker.finish()
            states = feed.states
            // Back on this thread (unless an `iommu:map` took it back earlier).
            if intent.checkWorker != nil {
                intent.allocatorCheck = done.check
                intent.checkWorker = nil
            }
        } else {
            states += makeStates(local..<n)
            try source.forEachEvent { i, e in
                seen.add(e)
                intent.handle(i, e, &states)
            }
            intent.finish(&states)
        }

        // The final state of each class: a simulated one, or a sibling's inside its primary.
        var stateOf: [Int: ScenarioState] = [:]
        for (k, i) in simulated.enumerated() {
            stateOf[i] = states[k]
            for (j, sibling) in zip(siblingsOf[i] ?? [], states[k].siblings) {
                stateOf[j] = fresh[j].adopting(states[k], sibling: sibling)
            }
        }
        let results = scenarios.indices.map { i in
            let s = stateOf[classOf[i]]!
            return finish(classOf[i] == i ? s : fresh[i].adopting(s), intent: intent, facts: facts)
        }
        var notes: [String] = []
        // The scenario facts the events show: named where the capture's metadata was silent, and every
        // contradiction with it.
        let inferences = seen.infer(metadata: source.metadata)
        var conflicts: [String] = []
        for (inf, line) in zip(inferences, ScenarioEvidence.describe(inferences, metadata: source.metadata)) {
            let silent: Bool
            switch inf.fact {
            case "iommu_platform":
                silent =
                    inf.device.map {
                        source.metadata.devices[$0].iommuPlatform == nil
                            && source.metadata.devices[$0].featuresOffered == nil
                    } ?? false
            case "viommu": silent = source.metadata.capture.viommu == nil
            default: silent = source.metadata.capture.guestIOMMU == nil
            }
            if inf.contradicts != nil { conflicts.append(line) }
            if silent || inf.contradicts != nil { notes.append("scenario evidence: " + line) }
        }
        for line in IOMMUAttachment.describe(source.metadata) { notes.append("scenario evidence: " + line) }
        let inferred = facts.filter { $0.iommuPlatformInferred && intent.firstSeen[$0.index] != nil }
        if !inferred.isEmpty {
            notes.append(
                "iommu_platform not recorded for \(inferred.map(\.name).joined(separator: ", ")); inferred from the transport (modern-only with a vIOMMU = on): \(inferred.map { "\($0.name)=\($0.iommuPlatform ? "on" : "off")" }.joined(separator: ", "))"
            )
        }
        if intent.orphanCount > 0 {
            notes.append(
                "\(intent.orphanCount) iommu:map event(s) named no device; \(intent.adoptedCount) were attributed by a matching host translation, the rest were not replayed"
            )
        }
        if intent.unattributed > 0 {
            notes.append("\(intent.unattributed) mapping event(s) named no device and were not replayed")
        }
        if intent.lateUnjudged > 0 {
            notes.append(
                "\(intent.lateUnjudged) recorded host translation(s) came later than the skew window (\(Double(options.skewToleranceNs ?? 0) / 1e6) ms) after their buffer's unmap and the host trace records no page-selective IOTLB invalidation (nor, under lazy invalidation, a flush) to tell clock skew from a use after unmap: judged by time alone"
            )
        }
        if let check = intent.allocatorCheck, check.placedUnattributed > 0 {
            notes.append(
                "\(check.placedUnattributed) allocation(s) whose iommu:map named no device were checked in the one domain whose IOVA allocator predicts them"
            )
        }
        if let check = intent.allocatorCheck, check.skipped > 0 {
            notes.append(
                "\(check.skipped) iommu:map event(s) of unknown devices were not checked against the IOVA allocator")
        }
        if let check = intent.allocatorCheck {
            for (d, bits) in check.inferredMaskBits.sorted(by: { $0.key < $1.key }) where d < metadata.devices.count {
                notes.append(
                    "\(metadata.devices[d].name): its IOVAs fit a \(bits)-bit DMA mask (the trace records none): "
                        + "the IOVA allocator check used it from its first allocation that no wider mask explains")
            }
        }
        if intent.outsideCoverage > 0 {
            notes.append(
                "\(intent.outsideCoverage) recorded host translation(s) fall outside the guest trace's coverage (no guest map/unmap events around them) and were not replayed"
            )
        }
        if intent.unmatchedInCoverage > 0 {
            notes.append(
                "\(intent.unmatchedInCoverage) recorded host translation(s) inside the guest trace's coverage match no recorded mapping"
            )
        }
        if intent.oversizeBuffers > 0 {
            notes.append(
                "\(intent.oversizeBuffers) buffer(s) larger than \(IntentTracker.maxPagesPerBuffer) pages: only their first pages are tracked"
            )
        }
        if let r = recorded, !recordedFlags.contains(true) {
            notes.append("the recorded scenario \(r.id) was not requested: no fidelity check")
        }
        var result = ReplayResult(trace: tracePath, events: intent.eventsSeen, scenarios: results, notes: notes)
        result.evidenceConflicts = conflicts.isEmpty ? nil : conflicts
        return (result, intent.allocatorCheck?.divergenceCount ?? 0, intent.allocatorCheck?.checked ?? 0)
    }

    /// What reconstruction, batching and decompression cost the reading thread per event, in the unit of
    /// ``simulationWeight(_:)``. Measured 2026-12-07 on 1M events of the synth trace (callgrind, instructions
    /// per thread, full built-in matrix): the reading thread's own work was 1.86 G, a scenario whose three
    /// devices have IOVA addressing 0.34 G; a scenario with GPA addressing costs about a third of that
    /// (replay CPU time of one scenario, less that of a scenario whose devices never probe), and the
    /// 8-scenario replay was best with every scenario on the worker (per-thread `perf` samples).
    static let readingThreadWeight = 16.0

    /// The cost per event of simulating `s`, in units of a device with GPA addressing: per device 0 when
    /// blocked, 3 with IOVA addressing (allocator, page table, translation), 1 otherwise; averaged over the
    /// devices (each takes its share of the events).
    static func simulationWeight(_ s: ScenarioState) -> Double {
        guard !s.hot.isEmpty else { return 0 }
        let sum = s.hot.reduce(0.0) { w, d in
            w + (d.blocked ? 0 : (d.addressing == .iova || d.addressing == .bounceIOVA ? 3 : 1))
        }
        return sum / Double(s.hot.count)
    }

    /// What a ``FaultSibling`` adds to its primary's ``simulationWeight(_:)``: it only counts the primary's
    /// faults. An estimate: on the 1M-event synthetic matrix 0, 0.25 and 1 give the same split (callgrind per
    /// thread: 3.85 G reading thread, 3.50 G worker; a reading-thread weight of 19 instead of 16 gave 3.55 / 3.81 G).
    static let siblingWeight = 0.25

    /// How many of the simulated scenarios (weights in order) the reading thread takes so that the busier of it
    /// and the worker has the least to do; ties go to the worker (the reading thread's weight is the rougher).
    static func localShare(_ weights: [Double]) -> Int {
        let total = weights.reduce(0, +)
        var best = 0
        var bestLoad = Double.infinity
        var prefix = 0.0
        for l in 0...weights.count {
            if l > 0 { prefix += weights[l - 1] }
            let load = max(readingThreadWeight + prefix, total - prefix)
            if load < bestLoad {
                best = l
                bestLoad = load
            }
        }
        return best
    }

    private func finish(_ s0: ScenarioState, intent: IntentTracker, facts: [DeviceFacts]) -> ScenarioResult {
        var s = s0
        if s.isRecorded {
            checkRecordedLogs(&s, intent: intent)
            if let check = intent.allocatorCheck {
                s.fidelityChecked += check.checked
                for f in check.findings {
                    let occ = s.occurrence(
                        index: f.index, event: f.event, time: f.event.timestamp, deviceAddress: f.event.address,
                        buffer: f.event.address2, size: f.event.size, write: false, reason: nil)
                    s.diverge(f.what, device: f.device, at: occ)
                }
                if check.divergenceCount > check.findings.count {
                    s.divergenceCount += check.divergenceCount - check.findings.count
                }
            }
        }
        var devices: [DeviceResult] = []
        for f in facts {
            let plan = s.plans[f.index]
            let seen = intent.firstSeen[f.index]
            guard f.isVirtio || seen != nil else { continue }
            var groups: [OutcomeGroup] = []
            if let blocked = plan.blocked {
                let occ = seen.map {
                    s.occurrence(
                        index: $0.index, event: $0.event, time: $0.event.timestamp, deviceAddress: 0, buffer: nil,
                        size: 0, write: false, reason: nil)
                }
                groups.append(
                    OutcomeGroup(
                        outcome: blocked, key: blocked.rawValue, count: 1, first: occ, worst: nil,
                        explanation: plan.explanation, rule: plan.rule, guestLog: plan.guestLog, hostLog: plan.hostLog))
            }
            for g in s.groups[f.index] {
                groups.append(
                    OutcomeGroup(
                        outcome: g.outcome, key: key(g), count: g.count, first: g.first,
                        worst: g.worst == g.first ? nil : g.worst,
                        explanation: explanation(g, plan: plan, mode: s.scenario.mode),
                        rule: plan.rule, guestLog: g.guestLog, hostLog: g.hostLog, stray: g.stray))
            }
            groups.sort { ($0.outcome.rawValue, $0.key) < ($1.outcome.rawValue, $1.key) }
            let verdict = groups.filter { !$0.stray }.map(\.outcome).max { $0.severity < $1.severity } ?? .ok
            devices.append(
                DeviceResult(
                    device: f.name, verdict: verdict, groups: groups, accesses: s.accesses[f.index],
                    addressing: plan.addressingSummary))
        }
        devices.sort { $0.device < $1.device }
        var divergences = s.divergences
        if s.divergenceCount > divergences.count, let last = divergences.last {
            divergences.append(
                Divergence(
                    what: "\(s.divergenceCount - divergences.count) more divergence(s) not listed", device: nil,
                    at: last.at))
        }
        var result = ScenarioResult(
            kernel: s.scenario.kernelID, mode: s.scenario.modeID, isRecorded: s.isRecorded, devices: devices,
            divergences: divergences, checked: s.isRecorded ? s.fidelityChecked : nil,
            divergenceCount: s.isRecorded ? s.divergenceCount : nil)
        result.stream = s.stream?.metrics(names: facts.map(\.name))
        return result
    }

    /// Recorded guest fault lines and probe failures against the predicted ones (multiset by device, page, reason).
    private func checkRecordedLogs(_ s: inout ScenarioState, intent: IntentTracker) {
        var predicted: [String: Int] = [:]
        for r in s.predictedRecords { predicted["\(r.device)/\(r.page)/\(r.reason)", default: 0] += 1 }
        var recordedKeys: [String: Int] = [:]
        for g in intent.recordedGuestFaults {
            s.fidelityChecked += 1
            let k = "\(g.device)/\(g.page)/\(g.reason)"
            recordedKeys[k, default: 0] += 1
            if predicted[k, default: 0] > 0 {
                predicted[k]! -= 1
            } else {
                let occ = s.occurrence(
                    index: g.index, event: g.event, time: g.event.timestamp, deviceAddress: g.page,
                    buffer: nil, size: 0, write: g.event.eventFlags.contains(.write), reason: g.reason)
                s.diverge(
                    "recorded guest fault line (reason \(Hex.prefixed(UInt64(g.reason))) at \(Hex.prefixed(g.page))) not predicted",
                    device: g.device, at: occ)
            }
        }
        if !intent.recordedGuestFaults.isEmpty {
            // Predicted fault records the guest log does not show (the log was part of the trace).
            for (i, r) in s.predictedRecords.enumerated() {
                let k = "\(r.device)/\(r.page)/\(r.reason)"
                if predicted[k, default: 0] > 0 {
                    predicted[k]! -= 1
                    let occ = Occurrence(
                        eventIndex: -1, timestamp: 0, sourceFile: nil, sourcePosition: nil, deviceAddress: r.page,
                        bufferAddress: nil, size: 0, write: false, reason: r.reason)
                    s.diverge(
                        "predicted fault record #\(i + 1) (reason \(Hex.prefixed(UInt64(r.reason))) at \(Hex.prefixed(r.page))) not in the guest log",
                        device: r.device, at: occ)
                }
            }
        }
        s.fidelityChecked += intent.recordedProbeFailures.count
        for p in intent.recordedProbeFailures where s.plans[p.device].blocked == nil {
            let occ = s.occurrence(
                index: p.index, event: p.event, time: p.event.timestamp, deviceAddress: 0, buffer: nil,
                size: 0, write: false, reason: nil)
            s.diverge("recorded probe failure not predicted", device: p.device, at: occ)
        }
    }

    private func key(_ g: GroupAcc) -> String {
        var parts: [String] = []
        if let r = g.reason {
            parts.append("reason=0x\(Hex.digits(UInt64(r), width: 2))")
            parts.append(g.write ? "write" : "read")
        }
        if g.tag != .none { parts.append(g.tag.name) }
        if g.stray && g.tag != .stray { parts.append("stray") }
        return parts.isEmpty ? g.outcome.rawValue : parts.joined(separator: ",")
    }

    private func explanation(_ g: GroupAcc, plan: DevicePlan, mode: QemuModeModel) -> String {
        switch g.outcome {
        case .ok:
            return "Accesses reached the intended buffers (addressing: \(plan.addressingSummary))."
        case .untranslatedWhileClaimed:
            return
                "The firmware table (\(mode.scope) scope) puts the device behind \(mode.viommu) and the guest translates its DMA domain, but QEMU sends the device's DMA to plain memory: it works without the isolation the platform claims."
        case .stale:
            return
                "The access came after the unmap and succeeded only through an IOTLB entry the lazy flush queue had not yet invalidated (Linux flush queue: \(mode.viommu))."
        case .fault:
            let what = g.stray ? "A stray device access (no buffer was mapped at that address)" : "The device's address"
            if g.records == 0 && g.guestLog.isEmpty && g.hostLog.isEmpty && mode.faults.silentNotPresent == true {
                return
                    "\(what) has no PTE in the device's domain; \(mode.viommu) drops it without recording a fault (QEMU 7.2-10.0 amdvi_page_walk() stops on a zero PTE before amdvi_page_fault()): nothing in the guest log, nothing in QEMU's."
            }
            if g.records > 0 && g.guestLog.isEmpty && mode.faults.eventLog == .garbled {
                return
                    "\(what) has no usable translation in the device's domain; \(mode.viommu) blocks it and writes an event log entry the guest cannot decode (QEMU before 7.1 amdvi_encode_event()): no guest line is predicted."
            }
            return
                "\(what) has no usable translation in the device's domain; \(mode.viommu) blocks it and records a fault."
        case .misdirected:
            switch g.tag.name {
            case "stray":
                return
                    "A stray device access (no buffer was mapped at that address) is not translated and reaches guest memory at that address: silent corruption."
            case "iova-used-as-gpa":
                return
                    "The driver put an IOVA from the DMA API in the descriptor, but the device does not translate: it used the IOVA as a GPA and touched the wrong memory (silent corruption)."
            case "gpa-hit-another-mapping":
                return
                    "The driver put a GPA in the descriptor, the device translated it as an IOVA and hit another live mapping of its domain (silent corruption)."
            default: return "The device reached a different GPA than the buffer's."
            }
        case .mappingFailed:
            if g.tag == .bounceDoesNotFit { return OopsPrediction.bounceFailureText }
            return "The DMA API returned a mapping error for this buffer; the driver never submitted it."
        case .probeFailed, .invisible, .oopsHypothesis:
            return plan.explanation
        case .oops:
            return OopsPrediction.explanation(g, plan: plan)
        }
    }
}
