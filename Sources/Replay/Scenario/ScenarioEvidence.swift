import TraceFormat

/// What a trace's events show about the scenario it was recorded under, independent of the capture tool's
/// `--meta` facts (issue 13, item 4): per device, whether its DMA went through the guest's DMA API and the
/// vIOMMU (guest IOMMU maps, swiotlb bounces, host translations and faults), and whether virtio devices were
/// active at all (QEMU's virtqueue events). ``infer(metadata:)`` turns it, with the boot facts the dmesg
/// importer read (`evidence.*` in the metadata's `extra`), into per-device `iommu_platform`, each with the
/// evidence named, ambiguity said, and contradictions with the metadata listed.
public struct ScenarioEvidence: Sendable, Equatable {
    public struct DeviceCounts: Sendable, Equatable {
        public var guestMaps = 0
        public var swiotlbBounces = 0
        public var hostTranslations = 0
        public var hostFaults = 0
    }

    /// Per device index of the metadata.
    public var devices: [DeviceCounts] = []
    /// QEMU virtqueue events (pop/fill/flush/notify; QEMU names a queue, not a PCI device).
    public var virtqueueEvents = 0
    /// `vtd_switch_address_space` and the like: how many switched a device to the vIOMMU's address space, and how
    /// many to plain memory.
    public var addressSpaceTranslated = 0
    public var addressSpaceBypassed = 0
    /// Guest IOMMU maps that named no device.
    public var unattributedMaps = 0

    public init() {}

    /// True when the metadata leaves something to infer (a virtio device's `iommu_platform`, the vIOMMU, the
    /// guest IOMMU setting): then a pass over the events is worth it.
    public static func needed(_ metadata: TraceMetadata) -> Bool {
        metadata.capture.guestIOMMU == nil || metadata.capture.viommu == nil
            || metadata.devices.contains {
                ($0.virtioType != nil || $0.vendorID == 0x1AF4) && $0.iommuPlatform == nil && $0.featuresOffered == nil
            }
    }

    /// Counts what the events show.
    public static func scan(_ source: some EventSource) throws -> ScenarioEvidence {
        var ev = ScenarioEvidence()
        ev.devices = Array(repeating: DeviceCounts(), count: source.metadata.devices.count)
        try source.forEachEvent { _, e in ev.add(e) }
        return ev
    }

    /// Inlined into the replay's event loop (a call per event with the switch was ~2% of a one-scenario replay's
    /// instructions, `valgrind --tool=cachegrind`).
    @inline(__always)
    public mutating func add(_ e: Event) {
        let d = e.hasDevice && Int(e.device) < devices.count ? Int(e.device) : -1
        switch e.kind {
        case .iommuMap, .dmaMap, .dmaAlloc:
            if d >= 0 { devices[d].guestMaps += 1 } else if e.kind == .iommuMap { unattributedMaps += 1 }
        case .swiotlbBounce:
            if d >= 0 { devices[d].swiotlbBounces += 1 }
        case .hostTranslate:
            if d >= 0 { devices[d].hostTranslations += 1 }
        case .hostFault:
            if d >= 0 { devices[d].hostFaults += 1 }
        case .virtqueuePop, .virtqueueFill, .virtqueueFlush, .virtqueueNotify:
            virtqueueEvents += 1
        case .hostAddressSpace:
            if e.aux != 0 { addressSpaceTranslated += 1 } else { addressSpaceBypassed += 1 }
        default:
            break
        }
    }

    /// One inferred fact with the evidence for it.
    public struct Inference: Sendable, Equatable {
        /// Device index (nil for trace-wide facts).
        public var device: Int?
        /// `iommu_platform`, `guest-iommu`, `viommu`.
        public var fact: String
        /// The value inferred (nil when the evidence does not decide).
        public var value: String?
        /// What shows it.
        public var evidence: String
        /// The metadata says otherwise (the evidence wins for the report; the contradiction is a finding).
        public var contradicts: String?
        /// The evidence does not decide; `value` is then the prior used.
        public var ambiguous: Bool
    }

    /// The scenario facts the evidence supports, one per trace-wide fact and per virtio device.
    public func infer(metadata m: TraceMetadata) -> [Inference] {
        var out: [Inference] = []
        let extra = m.extra
        let viommu = m.capture.viommu
        // vIOMMU kind.
        if let v = viommu {
            out.append(
                Inference(
                    device: nil, fact: "viommu", value: v,
                    evidence: extra["evidence.viommu"] ?? "the vIOMMU's own trace events or the capture facts",
                    contradicts: nil, ambiguous: false))
        } else {
            let anyHost =
                devices.contains { $0.hostTranslations + $0.hostFaults > 0 }
                || addressSpaceTranslated + addressSpaceBypassed > 0
            out.append(
                Inference(
                    device: nil, fact: "viommu", value: anyHost ? nil : "none",
                    evidence: anyHost
                        ? "host translations without a known vIOMMU kind"
                        : "no vIOMMU line in the guest log and no vIOMMU event in the host trace",
                    contradicts: nil, ambiguous: anyHost))
        }
        // Guest IOMMU setting.
        let guestMaps = devices.reduce(0) { $0 + $1.guestMaps } + unattributedMaps
        var setting: String?
        switch m.capture.guestIOMMU {
        case .translated?: setting = m.capture.flushPolicy == .lazy ? "lazy" : "strict"
        case .passthrough?: setting = "pt"
        case .off?: setting = "off"
        case nil: setting = nil
        }
        var gEvidence = [extra["evidence.guest-iommu"], extra["evidence.flush"]].compactMap { $0 }.joined(
            separator: "; ")
        if gEvidence.isEmpty { gEvidence = "the capture facts" }
        var gContradiction: String?
        if setting == "off" && guestMaps > 0 {
            gContradiction = "\(guestMaps) guest IOMMU map(s) recorded although the guest IOMMU is off"
        }
        if setting == "pt" && addressSpaceTranslated > 0 && addressSpaceBypassed == 0 {
            gContradiction =
                "QEMU switched devices to the vIOMMU's address space only, never to plain memory, although the guest uses identity domains"
        }
        if setting == nil {
            if guestMaps > 0 {
                setting = "strict"
                gEvidence = "\(guestMaps) guest IOMMU map(s); the flush policy is not recorded (taken as strict)"
            } else if addressSpaceBypassed > 0 && addressSpaceTranslated == 0 {
                setting = "pt"
                gEvidence =
                    "QEMU switched \(addressSpaceBypassed) device address space(s) to plain memory and none to the vIOMMU, no guest IOMMU map"
            }
        } else if m.capture.guestIOMMU == .passthrough {
            gEvidence +=
                addressSpaceBypassed > 0
                ? "; QEMU switched \(addressSpaceBypassed) device address space(s) to plain memory" : ""
        }
        out.append(
            Inference(
                device: nil, fact: "guest-iommu", value: setting, evidence: gEvidence, contradicts: gContradiction,
                ambiguous: setting == nil))

        // Per virtio device: iommu_platform.
        // A translating policy with nothing attached (or a DRHD without DMA translation) translates nothing, and a
        // device outside every IOMMU's scope is untranslated: their silence says nothing of iommu_platform.
        let untranslated = IOMMUAttachment.noneAttached(m) || IOMMUAttachment.dmaTranslationOff(m)
        let behind = IOMMUAttachment.behindIOMMU(m)
        let translatedGuest =
            !untranslated && (m.capture.guestIOMMU == .translated || (m.capture.guestIOMMU == nil && guestMaps > 0))
        let hasVIOMMU = (viommu.map { $0 != "none" } ?? false)
        let modernVirtio = m.devices.indices.filter {
            let d = m.devices[$0]
            return (d.virtioType != nil || d.vendorID == 0x1AF4)
                && (d.transport == .modern || (d.deviceID ?? 0) >= 0x1040)
        }
        let modernWithDMA = modernVirtio.filter {
            devices.indices.contains($0)
                && devices[$0].guestMaps + devices[$0].hostTranslations + devices[$0].hostFaults > 0
        }
        for i in m.devices.indices {
            let d = m.devices[i]
            guard d.virtioType != nil || d.vendorID == 0x1AF4, i < devices.count else { continue }
            let c = devices[i]
            let modern = modernVirtio.contains(i)
            var value: Bool?
            var why: String
            var ambiguous = false
            if c.guestMaps > 0 || c.hostTranslations > 0 || c.hostFaults > 0 {
                value = true
                why =
                    "\(c.guestMaps) guest IOMMU/DMA-API map(s), \(c.hostTranslations) host translation(s): its DMA went through the vIOMMU"
                if !hasVIOMMU || !translatedGuest {
                    why = "\(c.guestMaps) DMA-API map(s) with IOVAs and \(c.hostTranslations) host translation(s)"
                }
            } else if c.swiotlbBounces > 0 && !hasVIOMMU {
                value = true
                why =
                    "\(c.swiotlbBounces) swiotlb bounce(s) without a vIOMMU: the driver used the DMA API, which virtio does only with VIRTIO_F_ACCESS_PLATFORM"
            } else if !modern {
                value = false
                why = "a transitional (legacy-capable) device: QEMU refuses iommu_platform on it"
            } else if translatedGuest && hasVIOMMU && behind[i] && virtqueueEvents > 0 && modernWithDMA.isEmpty {
                value = false
                why =
                    "\(virtqueueEvents) QEMU virtqueue event(s), yet no guest IOMMU map and no host translation of any modern-only virtio device while the guest translates: they bypassed the DMA API and the vIOMMU"
            } else {
                // Nothing decides (identity or no guest IOMMU: both settings give the same DMA): the prior.
                value = hasVIOMMU && modern
                ambiguous = true
                why =
                    "no DMA of this device that tells (guest IOMMU \(setting ?? "unknown"), \(c.swiotlbBounces) bounce(s), \(virtqueueEvents) virtqueue event(s) in all): assumed \(value! ? "on" : "off") (modern-only with\(hasVIOMMU ? "" : "out") a vIOMMU)"
            }
            var contradicts: String?
            if let recorded = d.iommuPlatform, let v = value, !ambiguous, recorded != v {
                contradicts = "the metadata says iommu_platform=\(recorded ? "on" : "off")"
            }
            out.append(
                Inference(
                    device: i, fact: "iommu_platform", value: value.map { $0 ? "on" : "off" }, evidence: why,
                    contradicts: contradicts, ambiguous: ambiguous))
        }
        return out
    }

    /// `metadata` with what the evidence decides filled in where the metadata is silent (never overriding it).
    public func apply(to metadata: TraceMetadata) -> TraceMetadata {
        var m = metadata
        for inf in infer(metadata: metadata) {
            if let i = inf.device, inf.fact == "iommu_platform", m.devices[i].iommuPlatform == nil,
                m.devices[i].featuresOffered == nil,
                !inf.ambiguous, let v = inf.value
            {
                m.devices[i].iommuPlatform = v == "on"
            }
            if inf.fact == "viommu", m.capture.viommu == nil, let v = inf.value { m.capture.viommu = v }
            if inf.fact == "guest-iommu", m.capture.guestIOMMU == nil, let v = inf.value {
                switch v {
                case "pt": m.capture.guestIOMMU = .passthrough
                case "off": m.capture.guestIOMMU = .off
                default:
                    m.capture.guestIOMMU = .translated
                    m.capture.flushPolicy = m.capture.flushPolicy ?? (v == "lazy" ? .lazy : .strict)
                }
            }
        }
        return m
    }

    /// Lines for `info` and the replay notes.
    public static func describe(_ inferences: [Inference], metadata: TraceMetadata) -> [String] {
        inferences.map { inf in
            let subject = inf.device.map { "\(metadata.devices[$0].name) iommu_platform" } ?? inf.fact
            var s = "\(subject): \(inf.value ?? "unknown")\(inf.ambiguous ? " (ambiguous)" : "") - \(inf.evidence)"
            if let c = inf.contradicts { s += "; CONTRADICTS the recorded facts: \(c)" }
            return s
        }
    }
}
