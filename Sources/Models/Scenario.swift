import TraceFormat

/// The guest IOMMU configuration a scenario runs the kernel with (its command line: `intel_iommu=off`,
/// `iommu=pt`, `iommu.strict=1`, lazy default).
public enum GuestIOMMUSetting: String, Sendable, Codable, CaseIterable {
    /// No guest IOMMU driver for DMA (DMA addresses are GPAs).
    case off
    /// Identity (pass-through) default domain: DMA addresses are GPAs, contexts pass through.
    case passthrough = "pt"
    /// Translated DMA domain, IOTLB flushed at every unmap.
    case strict
    /// Translated DMA domain with the flush queue (unmapped IOVAs stay usable until it drains).
    case lazy

    /// The setting a capture recorded, if the facts say.
    public init?(capture: CaptureFacts) {
        switch capture.guestIOMMU {
        case .off?: self = .off
        case .passthrough?: self = .passthrough
        case .translated?: self = capture.flushPolicy == .lazy ? .lazy : .strict
        case nil: return nil
        }
    }

    /// True for the translated settings.
    public var translates: Bool { self == .strict || self == .lazy }
}

/// One scenario: a kernel model with a guest IOMMU setting, under a QEMU mode.
/// Written `KERNEL[+GUEST-IOMMU]@MODE`, e.g. `linux-4.8-platform+lazy@qemu-viommu-virtio-translated`.
public struct Scenario: Sendable, Equatable {
    /// The kernel model.
    public var kernel: KernelModel
    /// The QEMU mode.
    public var mode: QemuModeModel
    /// Guest IOMMU setting; nil means "as the trace recorded it".
    public var guestIOMMU: GuestIOMMUSetting?
    /// Hypotheses switched on for this run (ids), in addition to those enabled in the kernel file.
    public var enabledHypotheses: Set<String>

    public init(kernel: KernelModel, mode: QemuModeModel, guestIOMMU: GuestIOMMUSetting? = nil, enabledHypotheses: Set<String> = []) {
        self.kernel = kernel
        self.mode = mode
        self.guestIOMMU = guestIOMMU
        self.enabledHypotheses = enabledHypotheses
    }

    /// The kernel part of the id (`linux-4.8-platform` or `linux-4.8-platform+lazy`).
    public var kernelID: String { guestIOMMU.map { "\(kernel.id)+\($0.rawValue)" } ?? kernel.id }

    /// `KERNEL[+GUEST-IOMMU]@MODE`.
    public var id: String { "\(kernelID)@\(mode.id)" }

    /// True when hypothesis `id` is on.
    public func hypothesisEnabled(_ id: String) -> Bool {
        enabledHypotheses.contains(id) || (kernel.hypotheses ?? []).contains { $0.id == id && $0.enabled }
    }

    /// Parses `KERNEL[+GUEST-IOMMU]@MODE` against `catalog`.
    public static func parse(_ text: String, catalog: ModelCatalog) throws(ModelError) -> Scenario {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw .badScenario(text, reason: "expected KERNEL[+GUEST-IOMMU]@MODE, e.g. linux-4.8-platform@qemu-noiommu")
        }
        let kernelPart = parts[0].split(separator: "+", omittingEmptySubsequences: false)
        guard kernelPart.count <= 2 else { throw .badScenario(text, reason: "more than one '+' in the kernel part") }
        var setting: GuestIOMMUSetting?
        if kernelPart.count == 2 {
            guard let s = GuestIOMMUSetting(rawValue: String(kernelPart[1])) else {
                throw .badScenario(
                    text, reason: "guest IOMMU setting '\(kernelPart[1])' is not one of off, pt, strict, lazy")
            }
            setting = s
        }
        return Scenario(
            kernel: try catalog.kernel(String(kernelPart[0])), mode: try catalog.mode(String(parts[1])),
            guestIOMMU: setting)
    }
}
