import Models
import TraceFormat

/// Event-level cross-validation (docs/replay.md, traces/README.md): for every ordered pair (A, B) of real captures of
/// the same workload, the capture of A is replayed under B's recorded scenario and the predicted DMA stream is
/// compared, per device, with B's real stream (``StreamMetrics``); beside it the same comparison for a trace-free
/// baseline (A's metadata without any event replayed under B's scenario), so the table shows what the recording
/// adds; and, where a configuration was captured twice (`NAME` and `NAME-boot2`), the boot-to-boot spread of the
/// real streams: the noise floor.
public enum CrossValidation {
    /// One capture: a name (`intel-strict`, `intel-strict-boot2`, `linux5.10-intel-strict`) and its events.
    public struct Capture: Sendable {
        public var name: String
        public var trace: EventBuffer

        public init(name: String, trace: EventBuffer) {
            self.name = name
            self.trace = trace
        }

        /// Reads the capture at `path` (`.dmat` or `.jsonl`) into memory; its name is the file name without
        /// `.dmat`/`.jsonl`. Returns the damage found, in words.
        public static func load(_ path: String) throws -> (capture: Capture, damage: [String]) {
            let opened = try OpenedTrace.open(path)
            var b = EventBuffer(metadata: opened.source.metadata)
            try opened.source.forEachEvent { _, e in b.append(e) }
            var name = path.split(separator: "/").last.map(String.init) ?? path
            for ext in [".dmat", ".jsonl"] where name.hasSuffix(ext) { name = String(name.dropLast(ext.count)) }
            return (Capture(name: name, trace: b), opened.damage())
        }
    }

    /// One compared quantity, summed over devices: |predicted - real| per device.
    public struct Metric: Sendable, Codable, Equatable {
        public var name: String
        public var predicted: Int
        public var real: Int
        public var error: Int
        public var baselineError: Int
    }

    /// One ordered pair.
    public struct Pair: Sendable, Codable, Equatable {
        public var a: String
        public var b: String
        /// B's recorded scenario, guest IOMMU setting explicit.
        public var scenario: String
        public var metrics: [Metric]
        /// Fault keys (`reason@page` with counts) that differ between prediction and B, over all devices.
        public var faultDifferences: Int
        public var baselineFaultDifferences: Int
        /// IOVAs equal from the start of each device's sequence, and how many were comparable (the shorter).
        public var iovaPrefix: Int
        public var iovaCompared: Int
    }

    /// Boot-to-boot spread of one configuration (the real streams of two boots compared like a pair).
    public struct Spread: Sendable, Codable, Equatable {
        public var config: String
        public var metrics: [Metric]
        public var faultDifferences: Int
    }

    public struct Result: Sendable, Codable, Equatable {
        public var pairs: [Pair]
        public var spreads: [Spread]
    }

    public static let metricNames = ["maps", "unmaps", "translations", "invalidations", "bounces"]

    /// Runs the validation over `captures` (every ordered pair, the capture itself included as A = B).
    public static func run(_ captures: [Capture], catalog: ModelCatalog) throws -> Result {
        try run(captures, under: captures, catalog: catalog)
    }

    /// Replays every capture of `sources` under the recorded scenario of every capture of `targets` (the
    /// cross-version prediction: captures of one kernel and QEMU replayed under the scenarios of captures of
    /// others, compared with those real captures). Spreads come from the `-boot2` captures of either set.
    public static func run(_ sources: [Capture], under targets: [Capture], catalog: ModelCatalog) throws -> Result {
        var seen = Set<String>()
        let captures = (sources + targets).filter { seen.insert($0.name).inserted }
        // Errors: ModelError.badScenario naming the capture whose recorded scenario cannot be told; EventSource errors.
        var scenarios: [String: Scenario] = [:]
        var real: [String: StreamMetrics] = [:]
        for c in captures {
            let evidence = try ScenarioEvidence.scan(c.trace)
            let metadata = evidence.apply(to: c.trace.metadata)
            var s: Scenario
            switch RecordedScenario.infer(metadata: metadata, catalog: catalog) {
            case let .success(found): s = found
            case let .failure(e):
                throw ModelError.badScenario(c.name, reason: "cannot tell its recorded scenario: \(e)")
            }
            s.guestIOMMU = s.guestIOMMU ?? GuestIOMMUSetting(capture: metadata.capture)
            // The capture's guest command line: its `swiotlb=force` (a kernel parameter like the IOMMU policy, not
            // a device property) applies to whatever capture is replayed under this scenario; none recorded is
            // none forced.
            s.swiotlbForced = metadata.capture.swiotlbForced ?? false
            scenarios[c.name] = s
            real[c.name] = try StreamMetrics.recorded(c.trace)
        }
        var pairs: [Pair] = []
        let options = ReplayOptions(scenarioThreads: 1, collectStream: true)
        for a in sources {
            // One pass over A for every target's scenario (each distinct scenario once; the recorded scenario's
            // allocator check, which does not depend on the target, runs once per A instead of once per pair).
            var ids: [String: Int] = [:]
            var list: [Scenario] = []
            for b in targets where ids[scenarios[b.name]!.id] == nil {
                ids[scenarios[b.name]!.id] = list.count
                list.append(scenarios[b.name]!)
            }
            let aTrace = a.trace
            let baseTrace = EventBuffer(metadata: aTrace.metadata)
            // A's own recorded scenario is given so that A's multi-segment DMA-API calls are recognised.
            let predictedAll = try ReplayEngine(scenarios: list, recorded: scenarios[a.name], options: options)
                .run(aTrace, tracePath: a.name).scenarios
            let baselineAll = try ReplayEngine(scenarios: list, options: options).run(baseTrace, tracePath: a.name)
                .scenarios
            for b in targets {
                let s = scenarios[b.name]!
                let predicted = predictedAll[ids[s.id]!].stream ?? StreamMetrics()
                let baseline = baselineAll[ids[s.id]!].stream ?? StreamMetrics()
                let r = real[b.name]!
                let (metrics, faults) = compare(predicted, r)
                let (baseMetrics, baseFaults) = compare(baseline, r)
                var merged = metrics
                for i in merged.indices { merged[i].baselineError = baseMetrics[i].error }
                let (prefix, compared) = iovaAgreement(predicted, r)
                pairs.append(
                    Pair(
                        a: a.name, b: b.name, scenario: s.id, metrics: merged, faultDifferences: faults,
                        baselineFaultDifferences: baseFaults, iovaPrefix: prefix, iovaCompared: compared))
            }
        }
        var spreads: [Spread] = []
        for c in captures where c.name.hasSuffix("-boot2") {
            let first = String(c.name.dropLast(6))
            guard let r1 = real[first], let r2 = real[c.name] else { continue }
            let (m, f) = compare(r2, r1)
            spreads.append(Spread(config: first, metrics: m, faultDifferences: f))
        }
        return Result(pairs: pairs, spreads: spreads)
    }

    static func value(_ d: StreamMetrics.Device?, _ name: String) -> Int {
        guard let d else { return 0 }
        switch name {
        case "maps": return d.maps
        case "unmaps": return d.unmaps
        case "translations": return d.translations
        case "bounces": return d.bounces
        default: return 0
        }
    }

    /// Per metric: totals and the sum over devices of |predicted - real|; and the fault keys that differ.
    static func compare(_ p: StreamMetrics, _ r: StreamMetrics) -> ([Metric], Int) {
        let names = Set(p.devices.keys).union(r.devices.keys).sorted()
        var out: [Metric] = []
        for m in metricNames {
            if m == "invalidations" {
                out.append(
                    Metric(
                        name: m, predicted: p.invalidations, real: r.invalidations,
                        error: abs(p.invalidations - r.invalidations), baselineError: 0))
                continue
            }
            var pt = 0, rt = 0, err = 0
            for n in names {
                let pv = value(p.devices[n], m), rv = value(r.devices[n], m)
                pt += pv
                rt += rv
                err += abs(pv - rv)
            }
            out.append(Metric(name: m, predicted: pt, real: rt, error: err, baselineError: 0))
        }
        var faults = 0
        for n in names {
            let pf = p.devices[n]?.faults ?? [:], rf = r.devices[n]?.faults ?? [:]
            for k in Set(pf.keys).union(rf.keys) where pf[k] != rf[k] { faults += 1 }
        }
        return (out, faults)
    }

    /// Per device, the IOVAs equal from the start of the sequence; and how many could be compared.
    static func iovaAgreement(_ p: StreamMetrics, _ r: StreamMetrics) -> (Int, Int) {
        var prefix = 0, compared = 0
        for (n, rd) in r.devices where !rd.iovas.isEmpty {
            let pv = p.devices[n]?.iovas ?? []
            let k = min(pv.count, rd.iovas.count)
            compared += k
            var i = 0
            while i < k && pv[i] == rd.iovas[i] { i += 1 }
            prefix += i
        }
        return (prefix, compared)
    }

    /// The Markdown tables (kept in traces/README.md by a test).
    public static func markdown(_ r: Result) -> String {
        var l: [String] = []
        l.append(
            "| capture A → scenario of B | B's recorded scenario | " + metricNames.joined(separator: " | ")
                + " | faults (reason@page) | IOVA prefix |")
        l.append("|---|---|" + String(repeating: "---|", count: metricNames.count + 2))
        for p in r.pairs {
            var cells = ["\(p.a) → \(p.b)", "`\(p.scenario)`"]
            for m in p.metrics {
                cells.append("\(m.predicted)/\(m.real) ±\(m.error) (\(m.baselineError))")
            }
            cells.append(
                p.faultDifferences == 0
                    ? "exact (\(p.baselineFaultDifferences))"
                    : "\(p.faultDifferences) differ (\(p.baselineFaultDifferences))")
            cells.append(p.iovaCompared == 0 ? "–" : "\(p.iovaPrefix)/\(p.iovaCompared)")
            l.append("| " + cells.joined(separator: " | ") + " |")
        }
        let within = r.pairs.filter { $0.a == $0.b }
        let across = r.pairs.filter { $0.a != $0.b }
        func total(_ ps: [Pair], _ base: Bool) -> Int {
            ps.reduce(0) { $0 + $1.metrics.reduce(0) { $0 + (base ? $1.baselineError : $1.error) } }
        }
        l.append("")
        l.append(
            "Count error, summed over metrics and devices: \(total(across, false)) across \(across.count) pairs of different captures (trace-free baseline \(total(across, true))), \(total(within, false)) for the \(within.count) captures replayed under their own scenario (baseline \(total(within, true))). Fault keys exact in \(r.pairs.filter { $0.faultDifferences == 0 }.count) of \(r.pairs.count) pairs (baseline \(r.pairs.filter { $0.baselineFaultDifferences == 0 }.count))."
        )
        l.append("")
        if r.spreads.isEmpty {
            l.append(
                "Boot-to-boot spread (noise floor): no configuration has a second boot (`NAME-boot2`) in this set.")
        } else {
            l.append("| boot-to-boot spread (noise floor) | " + metricNames.joined(separator: " | ") + " | faults |")
            l.append("|---|" + String(repeating: "---|", count: metricNames.count + 1))
            for s in r.spreads {
                l.append(
                    "| \(s.config) | "
                        + s.metrics.map { "\($0.real)/\($0.predicted) ±\($0.error)" }.joined(separator: " | ")
                        + " | \(s.faultDifferences == 0 ? "exact" : "\(s.faultDifferences) differ") |")
            }
        }
        return l.joined(separator: "\n")
    }
}
