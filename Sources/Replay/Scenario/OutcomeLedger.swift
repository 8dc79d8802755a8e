import Models

/// Where a scenario counts what its accesses and mappings did: the outcome groups per device and the fault
/// records (VT-d compression, the guest's and QEMU's log lines, the predicted records). ``ScenarioState`` is one;
/// a ``FaultSibling`` is another, for a scenario simulated inside the state of one that differs from it only in
/// how its vIOMMU reports faults (``SimulationKey/withoutFaultReporting``).
protocol OutcomeLedger {
    var scenario: Scenario { get }
    var facts: [DeviceFacts] { get }
    var inputs: [String] { get }
    /// Fault reason per ``FaultCause`` raw value under this scenario's vIOMMU.
    var reasons: (UInt32, UInt32, UInt32, UInt32) { get }
    var silentNotPresent: Bool { get }
    var groups: [[GroupAcc]] { get set }
    var groupKeys: [[GroupKey]] { get set }
    var lastRecord: [UInt64?] { get set }
    var predictedRecords: [(device: Int, page: UInt64, reason: UInt32)] { get set }
}

extension OutcomeLedger {
    func occurrence(_ o: OccurrenceArgs) -> Occurrence {
        ScenarioState.occurrence(
            inputs: inputs, index: o.index, event: o.event, time: o.time, deviceAddress: o.deviceAddress,
            buffer: o.buffer, size: o.size, write: o.write, reason: o.reason)
    }

    /// Counts one outcome in its group; the occurrence is built only when the group is new or the access is
    /// larger than the group's worst so far (the hot path builds none). `access`: a device access (counted in
    /// ``ScenarioState/accesses``), not a device-level outcome.
    @discardableResult
    mutating func record(
        _ outcome: OutcomeClass, device d: Int, reason: UInt32?, write: Bool, stray: Bool, tag: Tag,
        size: UInt64, access: Bool = false, at args: @autoclosure () -> OccurrenceArgs
    ) -> (Int, Int) {
        let key = GroupKey(outcome: outcome, reason: reason, write: write, stray: stray, tag: tag)
        var gi = -1
        for i in 0..<groupKeys[d].count where groupKeys[d][i] == key {
            gi = i
            break
        }
        if gi < 0 {
            groups[d].append(GroupAcc(outcome: outcome, reason: reason, write: write, stray: stray, tag: tag))
            groupKeys[d].append(key)
            gi = groups[d].count - 1
            groups[d][gi].first = occurrence(args())
            groups[d][gi].worstSize = size
        } else if size > groups[d][gi].worstSize {
            groups[d][gi].worst = occurrence(args())
            groups[d][gi].worstSize = size
        }
        groups[d][gi].add(access: access)
        return (d, gi)
    }

    /// A translated access that faulted for `cause`: counted in its group under this scenario's reason code,
    /// and recorded unless the vIOMMU blocks it without a record (`notPresent` under
    /// QemuModeModel.FaultRecording.silentNotPresent). Returns the reason code.
    @discardableResult
    mutating func fault(
        _ cause: FaultCause, notPresent: Bool, device d: Int, stray: Bool, write: Bool, size: UInt64,
        address: UInt64, time: UInt64, at args: @autoclosure () -> OccurrenceArgs
    ) -> UInt32 {
        let reason: UInt32
        switch cause {
        case .noContext: reason = reasons.0
        case .beyondWidth: reason = reasons.1
        case .read: reason = reasons.2
        case .write: reason = reasons.3
        }
        let g = record(
            .fault, device: d, reason: reason, write: write, stray: stray, tag: .none, size: size, access: true,
            at: {
                var o = args()
                o.reason = reason
                return o
            }())
        if !(notPresent && silentNotPresent) {
            faultRecord(group: g, device: d, reason: reason, address: address, write: write, time: time)
        }
        return reason
    }

    /// VT-d fault recording with compression: one record per source id until the guest clears it.
    private mutating func faultRecord(
        group g: (Int, Int), device d: Int, reason: UInt32, address: UInt64, write: Bool, time: UInt64
    ) {
        let m = scenario.mode
        let f = facts[d]
        var grp = groups[g.0][g.1]
        if grp.hostLog.count < ScenarioState.maxLogLines {
            grp.hostLog.append(
                FaultFormat.hostLine(reason: reason, address: address, write: write, device: f, viommu: m.viommu))
        }
        let service = UInt64(m.faults.serviceTimeUs) * 1000
        if m.faults.compression, let last = lastRecord[d], time >= last, time - last < service {
            groups[g.0][g.1] = grp
            return
        }
        lastRecord[d] = time
        grp.records += 1
        if grp.guestLog.count < ScenarioState.maxLogLines {
            grp.guestLog += FaultFormat.guestLines(
                reason: reason, address: address, write: write, device: f, viommu: m.viommu, kernel: scenario.kernel,
                eventLog: m.faults.eventLog ?? .valid)
        }
        groups[g.0][g.1] = grp
        if predictedRecords.count < ScenarioState.maxPredictedRecords {
            predictedRecords.append((d, address & ~0xFFF, reason))
        }
    }
}

/// A scenario simulated inside another's ``ScenarioState`` (its primary): the two have the same
/// ``SimulationKey`` but for fault reporting (the vIOMMU's reason codes, fault recording and log-line formats,
/// ``SimulationKey/withoutFaultReporting``), so they map, unmap and translate alike and fault on the same accesses
/// for the same ``FaultCause``. The primary hands each of its faults to its siblings, which count them under
/// their own reasons and records; everything else is the primary's (``ScenarioState/adopting(_:sibling:)``).
struct FaultSibling: OutcomeLedger {
    let scenario: Scenario
    let facts: [DeviceFacts]
    let inputs: [String]
    let reasons: (UInt32, UInt32, UInt32, UInt32)
    let silentNotPresent: Bool
    /// Fault groups only.
    var groups: [[GroupAcc]]
    var groupKeys: [[GroupKey]]
    var lastRecord: [UInt64?]
    var predictedRecords: [(device: Int, page: UInt64, reason: UInt32)] = []

    /// The sibling of `s`, a scenario's state before the replay.
    init(_ s: ScenarioState) {
        scenario = s.scenario
        facts = s.facts
        inputs = s.inputs
        reasons = s.reasons
        silentNotPresent = s.silentNotPresent
        groups = s.groups
        groupKeys = s.groupKeys
        lastRecord = s.lastRecord
    }
}
