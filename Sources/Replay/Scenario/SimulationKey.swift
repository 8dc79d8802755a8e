import Foundation
import Models

/// The projection of a scenario that its simulation (``ScenarioState``'s map, unmap, access and drain) depends on
/// (docs/replay.md, "Scenarios that behave alike"). Two scenarios with equal keys reach the same state on every
/// trace: same IOVAs, page tables, flush queue, outcome groups, counts and fault log lines. ``ReplayEngine``
/// simulates one scenario per key and gives every other scenario of the class a copy of that state, rendered
/// with its own models (``ScenarioState/adopting(_:)``: plans, rules, explanations and ids stay its own).
///
/// Every value the simulation reads from the scenario, its plans or its models must be in the key (or be
/// derived from what is): `DeduplicationTests` compares deduplicated with exhaustive replays of every built-in
/// scenario on the corpus and synthetic traces, and shows that a key which leaves out the device plans fails
/// that comparison. Values that cannot matter are normalised (a blocked device's addressing,
/// the address width of a scenario that neither allocates IOVAs nor translates, ...) so that more scenarios
/// share a class.
struct SimulationKey: Hashable, Sendable {
    /// The part of a device's plan the simulation reads.
    struct Device: Hashable, Sendable {
        var blocked: Bool
        var addressing: Addressing?
        var translated = false
        var claimed = false
        /// Lazy invalidation (only read for buffers the scenario maps in its page table).
        var lazy = false
        var contextAtBoot = false
        /// The oopses the device's failing mappings can reach (JSON), for `mapping-error` and `bounce` addressing.
        var oopses = ""
    }

    /// Index of the scenario when it is the recorded one: it follows the recorded IOVAs and invalidations and
    /// checks fidelity, so it is a class of its own.
    var recorded: Int?
    var devices: [Device]
    /// IOVA allocation (any device with IOVA addressing) or translation (any translated device).
    var awBits = 0
    var below4GFirst = false
    var iovaCache: KernelModel.IOVACache?
    /// amd-iommu with NpCache flushes at every map too (counted in the collected stream).
    var flushOnMap = false
    /// Flush queue (any lazy device).
    var flushTimeoutNs: UInt64 = 0
    var flushEntries = 0
    /// Faults (any translated device): reason codes, fault recording, the log lines' formats.
    var viommu = ""
    var reasons: [UInt32] = []
    var faults = ""
    var dmesg = ""

    init(_ s: ScenarioState, index: Int) {
        recorded = s.isRecorded ? index : nil
        devices = zip(s.hot, s.plans).map { hot, plan in
            guard !hot.blocked else { return Device(blocked: true, addressing: nil) }
            var d = Device(blocked: false, addressing: hot.addressing, translated: hot.translated, claimed: hot.claimed)
            if hot.addressing == .iova || hot.addressing == .bounceIOVA { d.lazy = hot.lazy }
            if hot.translated { d.contextAtBoot = plan.contextAtBoot }
            if hot.addressing == .mappingError || hot.addressing == .bounce {
                d.oopses = Self.json(
                    plan.oopses.filter { $0.trigger == .unmapAfterFailedMap || $0.trigger == .bounceDoesNotFit })
            }
            return d
        }
        let iova = devices.contains { $0.addressing == .iova || $0.addressing == .bounceIOVA }
        let translated = devices.contains { $0.translated }
        if iova || translated { awBits = s.awBits }
        if iova {
            below4GFirst = s.scenario.kernel.iommu.iovaBelow4GFirst
            iovaCache = s.scenario.kernel.iommu.iovaCacheInEffect
            flushOnMap = s.flushOnMap
        }
        if devices.contains(where: { $0.lazy }) {
            flushTimeoutNs = s.flushTimeoutNs
            flushEntries = s.flushEntries
        }
        if translated {
            let m = s.scenario.mode
            viommu = m.viommu
            reasons = [s.reasons.0, s.reasons.1, s.reasons.2, s.reasons.3]
            faults = Self.json(m.faults) + "|silent=\(s.silentNotPresent)"
            dmesg = FaultFormat.formatKey(kernel: s.scenario.kernel, viommu: m.viommu)
        }
    }

    /// The key without what only decides how faults are reported: the vIOMMU kind, its reason codes, fault
    /// recording and the guest's fault-line format, and amd-iommu's flush at map (only counted in the collected
    /// stream). Scenarios whose keys differ only there map, unmap and translate alike and fault on the same
    /// accesses for the same ``FaultCause`` (the causes are computed from the page table, the context entries and
    /// the address width, all in the key): one is simulated, the others ride along as its ``FaultSibling``s.
    var withoutFaultReporting: SimulationKey {
        var k = self
        k.viommu = ""
        k.reasons = []
        k.faults = ""
        k.dmesg = ""
        k.flushOnMap = false
        return k
    }

    private static func json(_ v: some Encodable) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return (try? e.encode(v)).map { String(decoding: $0, as: UTF8.self) } ?? "\(v)"
    }
}
