/// A guest-kernel behaviour model (DESIGN §6, domain.md §7.1): what one era of Linux does with a virtio or
/// other PCI device's DMA. Loaded from a JSON file (`kind: "kernel"`); the replay engine interprets the
/// fields, it never switches on the id.
public struct KernelModel: Sendable, Codable, Equatable {
    /// Stable id used in scenarios (`linux-4.8-platform`).
    public var id: String
    /// One-line description.
    public var title: String
    /// Upstream releases the model describes, used to pick the recorded kernel's model.
    public var releases: ReleaseRange?
    /// True for models of code that was never merged (rejected proposals); reports label them.
    public var hypothesis: Bool
    /// Where the behaviour comes from: kernel version, file, function (and the domain.md section).
    public var sources: [String]
    /// Free-form remarks (uncertainties, bracketed versions).
    public var notes: [String]?
    /// Virtio driver behaviour.
    public var virtio: VirtioDriver
    /// Guest IOMMU driver behaviour.
    public var iommu: GuestIOMMUDriver
    /// How this kernel prints IOMMU faults.
    public var dmesg: DmesgFormats
    /// Opt-in, unverified hypotheses (off unless enabled here or on the command line).
    public var hypotheses: [Hypothesis]?

    /// Which PCI ids the virtio-pci driver claims.
    public enum DriverIDs: String, Sendable, Codable, CaseIterable {
        /// Only legacy ids 0x1000–0x103f (virtio-pci before the modern driver): modern-only devices are invisible.
        case legacyOnly = "legacy-only"
        /// Legacy and modern ids; modern interface (VERSION_1) when the device has it.
        case legacyAndModern = "legacy-and-modern"
    }

    /// When `vring_use_dma_api()` returns true.
    public enum DMAAPIPolicy: String, Sendable, Codable, CaseIterable {
        /// Never (4.0–4.5: `sg_phys()`, `virt_to_phys()`).
        case never
        /// Only in a Xen domain (4.6–4.7).
        case xenOnly = "xen-only"
        /// Iff VIRTIO_F_ACCESS_PLATFORM (bit 33) was negotiated (RHEL 7 backport: no Xen clause).
        case accessPlatform = "access-platform"
        /// Iff bit 33 was negotiated, or in a Xen domain (4.8+).
        case accessPlatformOrXen = "access-platform-or-xen"
        /// Always, even without bit 33 (the rejected proposals).
        case always
    }

    /// The virtio side of the kernel.
    public struct VirtioDriver: Sendable, Codable, Equatable {
        /// Which device ids the driver claims.
        public var driver: DriverIDs
        /// When the DMA API is used for rings and buffers.
        public var dmaAPI: DMAAPIPolicy
        /// Whether the driver can accept bit 33 (false while `VIRTIO_TRANSPORT_F_END` was 33).
        public var acksAccessPlatform: Bool
        /// Confidential guest: refuses devices without VERSION_1 / ACCESS_PLATFORM, bounces DMA through swiotlb.
        public var restrictedMemory: Bool
        /// Error `virtqueue_add` returns when a mapping fails (`EIO` until f7728002c1c7, then `ENOMEM`).
        public var mapFailureErrno: String?
    }

    /// DMA-ops scope of the guest IOMMU driver.
    public enum DMAOpsScope: String, Sendable, Codable, CaseIterable {
        /// One global `dma_ops` (4.4–5.4): devices outside every DRHD get mapping failures.
        case global
        /// Per-device ops (5.10+): devices outside every DRHD get dma-direct (GPA).
        case perDevice = "per-device"
    }

    /// When the guest IOMMU driver programs a device's context entry.
    public enum ContextAttach: String, Sendable, Codable, CaseIterable {
        /// At boot, for every device in scope (default domains).
        case boot
        /// At the device's first DMA-API mapping (`get_valid_domain_for_dev()` in 4.x).
        case firstMap = "first-map"
    }

    /// Lazy-mode flush queue: unmapped IOVAs stay in the IOTLB until the queue drains.
    public struct FlushQueue: Sendable, Codable, Equatable {
        /// Drain timeout in milliseconds (10 in Linux).
        public var timeoutMs: Int
        /// Entries per queue before a forced drain (256 in Linux).
        public var entries: Int
    }

    /// The guest IOMMU driver side of the kernel.
    public struct GuestIOMMUDriver: Sendable, Codable, Equatable {
        /// vIOMMU kinds this kernel has a driver for (`intel-iommu`, `amd-iommu`, `smmuv3`, `virtio-iommu`).
        public var drivers: [String]
        /// Global or per-device DMA ops.
        public var dmaOpsScope: DMAOpsScope
        /// When context entries are programmed.
        public var contextAttach: ContextAttach
        /// Lazy flush queue parameters.
        public var flushQueue: FlushQueue
        /// IOVA allocation: top-down below 4 GiB first (true in Linux for PCI devices), freed ranges reused.
        public var iovaBelow4GFirst: Bool
    }

    /// The era of each fault printer (domain.md §4.3–4.6).
    public struct DmesgFormats: Sendable, Codable, Equatable {
        /// Intel DMAR: `4.4` (two lines, decimal), `4.7` (one line, decimal), `5.4` (PASID, decimal), `5.15` (hex, NO_PASID).
        public var vtd: String
        /// AMD-Vi: `4.4`, `5.4`, `6.1`.
        public var amdvi: String
        /// SMMUv3: `raw` (event dump) or `decoded` (6.19: dump plus decoded line).
        public var smmuv3: String
    }

    /// An opt-in, unverified behaviour.
    public struct Hypothesis: Sendable, Codable, Equatable {
        /// `null-deref-no-catch-all-drhd` (the only one the engine evaluates).
        public var id: String
        /// Label printed with every outcome it produces.
        public var label: String
        /// Off by default; `--hypothesis ID` turns it on for a run.
        public var enabled: Bool
        /// Why it is only a hypothesis.
        public var source: String
    }
}

/// A range of upstream releases (`major.minor`), inclusive at both ends; `to` absent means "and later".
public struct ReleaseRange: Sendable, Codable, Equatable {
    public var from: String
    public var to: String?

    /// True when `release` (e.g. `6.1.0-56-amd64`, `3.10.0-1160.el7.x86_64`) falls in the range.
    public func contains(release: String) -> Bool {
        guard let v = ReleaseRange.majorMinor(release), let lo = ReleaseRange.majorMinor(from) else { return false }
        if v < lo { return false }
        if let to, let hi = ReleaseRange.majorMinor(to), hi < v { return false }
        return true
    }

    /// Width of the range in minor releases (narrower ranges are preferred when several match).
    var width: Int {
        guard let lo = ReleaseRange.majorMinor(from) else { return .max }
        guard let to, let hi = ReleaseRange.majorMinor(to) else { return 10_000 }
        return (hi.0 - lo.0) * 100 + (hi.1 - lo.1)
    }

    /// `(major, minor)` of a release string such as `6.1.0-56-amd64`, or nil.
    public static func majorMinor(_ s: String) -> (Int, Int)? {
        let parts = s.split(whereSeparator: { !$0.isNumber }).prefix(2)
        guard parts.count == 2, let a = Int(parts.first!), let b = Int(parts.last!) else { return nil }
        return (a, b)
    }
}
