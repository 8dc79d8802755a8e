import TraceFormat

/// What one ingest did, per input and overall, for the summary on stderr.
public struct IngestReport: Sendable {
    /// One input's outcome.
    public struct Input: Sendable {
        /// The path as given (`-` for stdin).
        public var path: String
        /// The importer's format id.
        public var format: String
        /// How the input was compressed.
        public var compression: IngestInput.Compression?
        /// Decompressed bytes read.
        public var bytes: UInt64
        /// What the importer understood, skipped and did not know.
        public var diagnostics: IngestDiagnostics
        /// The input's clock domain (`guest-*`, `host-*`).
        public var clockDomain: String = ""
        /// The vIOMMU kind this input itself revealed (`intel-iommu`, `amd-iommu`, ...), whatever the
        /// inputs before it said.
        public var viommu: String?
    }

    /// One entry per input, in input order.
    public var inputs: [Input] = []
    /// The guest/host merge, when inputs of both sides were given.
    public var alignment: AlignmentReport?

    /// All inputs' diagnostics added up.
    public var total: IngestDiagnostics {
        var d = IngestDiagnostics()
        for i in inputs { d.merge(i.diagnostics) }
        return d
    }

    /// Most event names listed per group and input in ``summary()``.
    public static let maxNamesListed = 100
    /// Longest event name shown in ``summary()`` (characters; longer ones are cut, with their size).
    public static let maxNameShown = 200

    /// The human summary: per input and event name, problems as file:line, lost-event warnings, alignment.
    public func summary() -> String {
        var lines: [String] = []
        for i in inputs {
            let d = i.diagnostics
            let c = i.compression.map { $0 == .none ? "" : ", \($0.rawValue)" } ?? ""
            lines.append(
                "\(i.path): \(i.format)\(c), \(i.bytes) bytes: \(d.totalUnderstood) understood, \(d.skipped) skipped, "
                    + "\(d.unknown.values.reduce(0, +)) unknown, \(d.comments) comment/other lines")
            // A hostile or garbled input can name millions of distinct events: list at most
            // `maxNamesListed` per group, then say how many more there are.
            func list(_ counts: [String: Int], _ line: (String, Int) -> String, more: String) {
                let sorted = counts.sorted(by: { $0.key < $1.key })
                // Names come from the input: escaped and cut (``TextSafety``).
                for (name, n) in sorted.prefix(Self.maxNamesListed) {
                    lines.append(line(TextSafety.clip(name, to: Self.maxNameShown), n))
                }
                if sorted.count > Self.maxNamesListed {
                    lines.append("  ... and \(sorted.count - Self.maxNamesListed) more \(more)")
                }
            }
            list(d.understood, { "  \($0): \($1)" }, more: "event names")
            list(
                d.ignored,
                { name, n in
                    name.hasPrefix("fact:")
                        ? "  \(name.dropFirst(5)): \(n) (capture fact)" : "  \(name): \(n) (not imported)"
                }, more: "names not imported")
            list(d.unknown, { "  \($0): \($1) (unknown event)" }, more: "unknown event names")
            list(d.joined, { "  joined: \($1) \($0)" }, more: "kinds of joins")
            for p in d.problems {
                lines.append("  malformed: \(TextSafety.clip(p.description, to: 4 * Self.maxNameShown))")
            }
            if d.problemsNotStored > 0 { lines.append("  ... and \(d.problemsNotStored) more malformed lines") }
            if d.lostEvents > 0 {
                lines.append("  warning: the input reports \(d.lostEvents) lost events; the trace is incomplete")
            }
        }
        if let a = alignment {
            let ms = Double(a.residualSkewNs) / 1e6
            lines.append(
                "alignment: \(a.method), \(a.pairsMatched) pairs matched, residual skew \(ms) ms; "
                    + "\(a.attributedEvents) guest events attributed to devices, \(a.unattributedEvents) left unattributed"
            )
        }
        return lines.joined(separator: "\n")
    }
}

/// Runs importers over inputs: picks each input's importer (by `--format` or sniffing), assigns input and
/// clock ids, and merges guest and host inputs.
public struct IngestPipeline {
    /// The importers to choose from.
    public var registry: ImporterRegistry
    /// Companion files for the importers.
    public var options: ImportOptions
    /// `--format`: `auto` or an importer id, for every input.
    public var format: String

    public init(
        registry: ImporterRegistry = .standard, options: ImportOptions = ImportOptions(), format: String = "auto"
    ) {
        self.registry = registry
        self.options = options
        self.format = format
    }

    /// Inputs with their chosen importers.
    public struct Plan {
        /// The opened inputs, in command-line order (the index is the event's ``Event/source``).
        public var inputs: [IngestInput]
        /// The importer chosen for each input.
        public var entries: [ImporterEntry]
        /// Clock id per input.
        public var clocks: [UInt8]
        /// The clock domains, id order.
        public var domains: [ClockDomain]

        /// True when an input's format records CPUs (``Importer/recordsCPU``): the `.dmat` declares 3.0.
        public var recordsCPU: Bool { entries.contains { $0.recordsCPU } }

        /// True when guest and host inputs must be aligned (and the events sorted in memory).
        public var needsMerge: Bool {
            domains.contains { $0.name.hasPrefix("guest") } && domains.contains { $0.name.hasPrefix("host") }
        }
    }

    /// Opens the inputs and chooses their importers. Host clock domains get the lowest ids, so that when
    /// guest and host are merged the host clock is the reference (id 0): host logs often start before the
    /// guest booted, which guest time cannot express.
    public func plan(_ inputs: [IngestInput]) throws(IngestError) -> Plan {
        var entries: [ImporterEntry] = []
        for input in inputs { entries.append(try registry.choose(format, for: input)) }
        var names: [String] = []
        for e in entries where !names.contains(e.clockDomain) { names.append(e.clockDomain) }
        let hostFirst = names.filter { $0.hasPrefix("host") } + names.filter { !$0.hasPrefix("host") }
        if hostFirst.count > 255 {
            throw .limitExceeded(
                path: inputs[0].path, offset: 0, what: "clock domains", value: UInt64(hostFirst.count), limit: 255)
        }
        let domains = hostFirst.enumerated().map { ClockDomain(id: UInt8($0.offset), name: $0.element) }
        let clocks = entries.map { e in UInt8(hostFirst.firstIndex(of: e.clockDomain)!) }
        return Plan(inputs: inputs, entries: entries, clocks: clocks, domains: domains)
    }

    /// Imports every input of `plan` into `sink` in input order (no merge, no sort): the streaming path for
    /// inputs that share one clock, or for a single input.
    public func run(_ plan: Plan, into sink: inout some EventSink) throws(IngestError) -> IngestReport {
        if plan.inputs.count > Int(UInt16.max - 1) {
            throw .limitExceeded(
                path: plan.inputs[0].path, offset: 0, what: "inputs", value: UInt64(plan.inputs.count),
                limit: UInt64(UInt16.max - 1))
        }
        sink.metadata.clocks = plan.domains.isEmpty ? sink.metadata.clocks : plan.domains
        var report = IngestReport()
        for (k, input) in plan.inputs.enumerated() {
            let entry = plan.entries[k]
            let source = UInt16(sink.metadata.inputs.count)
            sink.metadata.inputs.append(
                InputFile(path: input.path, format: entry.formatID, positionUnit: entry.positionUnit))
            var importer = try entry.make(options)
            var d = IngestDiagnostics()
            // Importers keep the first vIOMMU kind seen; each input's own is kept for the consistency check
            // of guest and host inputs (IngestChecks).
            let earlier = sink.metadata.capture.viommu
            sink.metadata.capture.viommu = nil
            if var ftrace = importer as? FtraceTextImporter {
                // Called on its own type, not through the `Importer` witness, so that the ftrace parser (the hot
                // path of text ingest) is specialized for this sink: its appends are direct calls, not generic
                // ones through witness tables.
                try ftrace.run(input, source: source, clock: plan.clocks[k], into: &sink, diagnostics: &d)
            } else {
                try Self.runOne(&importer, input, source: source, clock: plan.clocks[k], into: &sink, diagnostics: &d)
            }
            let revealed = sink.metadata.capture.viommu
            sink.metadata.capture.viommu = earlier ?? revealed
            sink.metadata.inputs[Int(source)].bytes = input.bytesRead
            report.inputs.append(
                IngestReport.Input(
                    path: input.path, format: entry.formatID, compression: input.compression, bytes: input.bytesRead,
                    diagnostics: d, clockDomain: entry.clockDomain, viommu: revealed))
        }
        return report
    }

    private static func runOne<I: Importer>(
        _ importer: inout I, _ input: IngestInput, source: UInt16, clock: UInt8, into sink: inout some EventSink,
        diagnostics: inout IngestDiagnostics
    ) throws(IngestError) {
        try importer.run(input, source: source, clock: clock, into: &sink, diagnostics: &diagnostics)
    }

    /// Imports all inputs into memory and, when guest and host inputs are both present, aligns and
    /// attributes them (``GuestHostMerger``); events end up in (aligned) time order.
    public func ingest(_ plan: Plan, meta: [String: String] = [:]) throws(IngestError) -> (EventBuffer, IngestReport) {
        var buffer = EventBuffer()
        var report = try run(plan, into: &buffer)
        if plan.needsMerge {
            let guest = Set(plan.domains.filter { $0.name.hasPrefix("guest") }.map(\.id))
            let host = plan.domains.first { $0.name.hasPrefix("host") }!.id
            report.alignment = GuestHostMerger(guestClocks: guest, hostClock: host).merge(&buffer)
        } else if plan.inputs.count > 1 {
            // Guest-only: attribution from the guest's own DMA-API events (no alignment).
            let guest = Set(plan.domains.filter { $0.name.hasPrefix("guest") }.map(\.id))
            if !guest.isEmpty && buffer.events.contains(where: { $0.kind == .iommuMap && !$0.hasDevice }) {
                report.alignment = GuestHostMerger(guestClocks: guest, hostClock: nil).merge(&buffer)
            }
            // Inputs on one clock (guest ftrace + dmesg) interleave by time; different unaligned clocks stay
            // apart (clock id first). Stable: equal times keep input order.
            let e = buffer.events
            let order = e.indices.sorted { (e[$0].clock, e[$0].timestamp, $0) < (e[$1].clock, e[$1].timestamp, $1) }
            buffer.events = order.map { e[$0] }
        }
        try Self.apply(meta: meta, to: &buffer.metadata)
        return (buffer, report)
    }

    /// `--meta key=value`: keys naming a capture fact set it (`kernel`, `kernel-cmdline`, `qemu`,
    /// `machine`, `viommu`, `viommu.PROP`, `guest-iommu` off|passthrough|translated, `flush` strict|lazy,
    /// `swiotlb-forced` true|false, `confidential`); every pair is also kept in ``TraceMetadata/extra``.
    /// Per-device facts the inputs cannot reveal (QEMU's `-device` properties) are `device.NAME.FIELD` with
    /// NAME the guest's `dev_name` (`0000:00:02.0`) and FIELD `iommu-platform` true|false, `transport`
    /// legacy|transitional|modern, or `id` VVVV:DDDD (hex); a device not in the table yet is added (a device
    /// that left no event, e.g. one whose DMA bypassed every traced path).
    /// A fact given here overrides what the inputs revealed.
    public static func apply(meta: [String: String], to metadata: inout TraceMetadata) throws(IngestError) {
        for (k, v) in meta.sorted(by: { $0.key < $1.key }) {
            metadata.extra[k] = v
            func bad(_ allowed: String) -> IngestError {
                .badFormat(path: "--meta", offset: 0, reason: "\(k)=\(v): expected \(allowed)")
            }
            switch k {
            case "kernel", "kernel-release": metadata.capture.kernelRelease = v
            case "kernel-cmdline": metadata.capture.kernelCommandLine = v
            case "qemu", "qemu-version": metadata.capture.qemuVersion = v
            case "machine": metadata.capture.machine = v
            case "viommu": metadata.capture.viommu = v
            case "confidential": metadata.capture.confidential = v
            case "guest-cpus":
                guard let n = Int(v), (1...8192).contains(n) else { throw bad("a CPU count, 1...8192") }
                metadata.capture.guestCPUs = n
            case "guest-iommu":
                guard let m = GuestIOMMUMode(rawValue: v) else { throw bad("off, passthrough or translated") }
                metadata.capture.guestIOMMU = m
            case "flush":
                guard let f = FlushPolicy(rawValue: v) else { throw bad("strict or lazy") }
                metadata.capture.flushPolicy = f
            case "swiotlb-forced":
                guard v == "true" || v == "false" else { throw bad("true or false") }
                metadata.capture.swiotlbForced = v == "true"
            default:
                if k.hasPrefix("viommu.") { metadata.capture.viommuProperties[String(k.dropFirst(7))] = v }
                if k.hasPrefix("device."), let dot = k.lastIndex(of: "."), dot > k.index(k.startIndex, offsetBy: 7) {
                    let name = String(k[k.index(k.startIndex, offsetBy: 7)..<dot])
                    var info = DeviceInfo(name: name)
                    switch k[k.index(after: dot)...] {
                    case "iommu-platform":
                        guard v == "true" || v == "false" else { throw bad("true or false") }
                        info.iommuPlatform = v == "true"
                    case "transport":
                        guard let t = VirtioTransport(rawValue: v) else { throw bad("legacy, transitional or modern") }
                        info.transport = t
                    case "id":
                        let ids = v.split(separator: ":")
                        guard ids.count == 2, let ven = UInt16(ids[0], radix: 16), let dev = UInt16(ids[1], radix: 16)
                        else { throw bad("VVVV:DDDD in hex") }
                        info.vendorID = ven
                        info.deviceID = dev
                    default:
                        throw bad("a device field: iommu-platform, transport or id")
                    }
                    _ = metadata.devices.register(info)
                }
            }
        }
    }
}
