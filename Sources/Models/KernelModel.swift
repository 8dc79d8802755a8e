/// A guest-kernel behaviour model: what one era of Linux does with a virtio or other PCI device's DMA
/// (docs/replay.md). Loaded from a JSON file (`kind: "kernel"`); the replay engine interprets the
/// fields, it never switches on the id.
public struct KernelModel: Sendable, Codable, Equatable {
    /// Stable id used in scenarios (`linux-4.8-platform`).
    public var id: String
    /// One-line description.
    public var title: String
    /// Upstream releases the model describes, used to pick the recorded kernel's model.
    public var releases: ReleaseRange?
    /// The release a scenario means when it names none (`linux-5.4` = `linux-5.4:5.4`); absent: `releases.from`.
    public var defaultRelease: String?
    /// Behaviour that changed inside the range, applied in order for the scenario's release (`linux-5.4:5.8`).
    public var byRelease: [ReleaseRule]?
    /// Kernel oopses and panics the sources show on DMA paths, with what triggers them.
    public var oopses: [Oops]?
    /// True for models of code that was never merged (rejected proposals); reports label them.
    public var hypothesis: Bool
    /// Where the behaviour comes from: kernel commit or file@version and function.
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
        /// Entries per queue before a forced drain (250 in 4.x intel-iommu's deferred flush, 256 from 4.14).
        public var entries: Int
    }

    /// The IOVA allocator's per-CPU range caches (`drivers/iommu/iova.c`): how many ranges a magazine holds and how
    /// many full magazines the global depot keeps per size.
    public struct IOVACache: Sendable, Codable, Equatable, Hashable {
        /// IOVA_MAG_SIZE: 128 up to v6.6, 127 from v6.7 (so that a magazine is 1024 bytes).
        public var magazineSize: Int
        /// MAX_GLOBAL_MAGS (32) up to v6.6; absent: an unbounded list (v6.7+, trimmed by a delayed work item
        /// 100 ms after the last push while it holds more magazines than there are online CPUs).
        public var depotLimit: Int?
        /// Whether `__alloc_and_insert_iova_range()` restarts a failed top-down search once from the limit
        /// (`retry_pfn`, "iommu/iova: Retry from last rb tree node if iova search fails", v5.11); absent: true.
        public var searchRetry: Bool?

        public init(magazineSize: Int, depotLimit: Int?, searchRetry: Bool? = nil) {
            self.magazineSize = magazineSize
            self.depotLimit = depotLimit
            self.searchRetry = searchRetry
        }

        /// Linux v4.7 (the range caches' introduction) to v5.19; v6.0-v6.6 have 127-entry magazines (the
        /// linux-6.1 model says so), the same 32-magazine depot.
        public static let upTo6_6 = IOVACache(magazineSize: 128, depotLimit: 32)
    }

    /// IOTLB invalidation policy of a translated DMA domain when the command line says nothing.
    public enum Policy: String, Sendable, Codable, CaseIterable {
        case lazy, strict
    }

    /// The default invalidation policy per guest IOMMU driver (absent: strict).
    public struct DefaultPolicy: Sendable, Codable, Equatable {
        public var intel: Policy?
        public var amd: Policy?
        public var smmuv3: Policy?
        public var virtioIOMMU: Policy?

        enum CodingKeys: String, CodingKey {
            case intel = "intel-iommu", amd = "amd-iommu", smmuv3, virtioIOMMU = "virtio-iommu"
        }

        public init(intel: Policy? = nil, amd: Policy? = nil, smmuv3: Policy? = nil, virtioIOMMU: Policy? = nil) {
            self.intel = intel
            self.amd = amd
            self.smmuv3 = smmuv3
            self.virtioIOMMU = virtioIOMMU
        }

        /// The policy for vIOMMU kind `viommu`.
        public func policy(for viommu: String) -> Policy {
            switch viommu {
            case "intel-iommu": intel ?? .strict
            case "amd-iommu": amd ?? .strict
            case "smmuv3": smmuv3 ?? .strict
            case "virtio-iommu": virtioIOMMU ?? .strict
            default: .strict
            }
        }
    }

    /// What makes the driver force strict invalidation whatever the command line says.
    public enum StrictCondition: String, Sendable, Codable, CaseIterable {
        /// intel-iommu with Caching Mode (QEMU `caching-mode=on`): "IOMMU batching disallowed due to virtualization".
        case cachingMode = "caching-mode"
        /// amd-iommu advertising NpCache (QEMU always does): "AMD-Vi: Using strict mode due to virtualization".
        case npCache = "np-cache"
    }

    /// What an AMD guest driver puts in the device table for devices it has not attached.
    public enum AMDDeviceTable: String, Sendable, Codable, CaseIterable {
        /// Only attached devices have a valid entry: others raise ILLEGAL_DEV_TABLE_ENTRY.
        case attachedOnly = "attached-only"
        /// Every entry valid with no translation and no permissions (4.x): QEMU drops the access silently.
        case allValidNoPermissions = "all-valid-no-permissions"
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
        /// The range caches (absent: ``IOVACache/upTo6_6``).
        public var iovaCache: IOVACache?
        /// ``iovaCache`` with its default: the caches this kernel's allocator has.
        public var iovaCacheInEffect: IOVACache { iovaCache ?? .upTo6_6 }
        /// Invalidation policy without a command-line option (absent: strict everywhere).
        public var defaultPolicy: DefaultPolicy?
        /// vIOMMU drivers that keep their flush queue under `iommu.strict=1`: Linux 5.10's amd-iommu asks only its
        /// own `amd_iommu=fullflush` (`amd_iommu_domain_get_attr(DOMAIN_ATTR_DMA_USE_FLUSH_QUEUE)` returns
        /// `!amd_iommu_unmap_flush`), until v5.13 made `iommu_dma_init_domain()` ask `iommu_get_dma_strict()`.
        public var strictIgnoredBy: [String]?
        /// Conditions that force strict invalidation (also over `iommu.strict=0`).
        public var strictWhen: [StrictCondition]?
        /// AMD device-table setup for unattached devices (absent: attached-only).
        public var amdDeviceTable: AMDDeviceTable?
    }

    /// The era of each fault printer.
    public struct DmesgFormats: Sendable, Codable, Equatable {
        /// Intel DMAR: `3.x` (two lines, `dmar: ` prefix), `4.4` (two lines, `DMAR: `), `4.7` (one line, decimal),
        /// `5.4` (PASID, decimal), `5.14` (hex, NO_PASID, `[0x00:0x05.0]`), `5.15` (hex, NO_PASID).
        public var vtd: String
        /// AMD-Vi: `4.4`, `5.4`, `6.1`.
        public var amdvi: String
        /// SMMUv3: `raw` (event dump) or `decoded` (dump plus two decoded lines).
        public var smmuv3: String
    }

    /// A change inside the model's release range; every field but `releases` and `source` is optional and
    /// replaces the model's value for releases in `releases`.
    public struct ReleaseRule: Sendable, Codable, Equatable {
        public var releases: ReleaseRange
        /// The commit or file@version that shows the change.
        public var source: String
        /// Set when the boundary or the behaviour still needs a real boot to confirm.
        public var verify: String?
        public var drivers: [String]?
        public var dmaOpsScope: DMAOpsScope?
        public var contextAttach: ContextAttach?
        public var flushQueue: FlushQueue?
        public var iovaCache: IOVACache?
        public var strictIgnoredBy: [String]?
        public var defaultPolicy: DefaultPolicy?
        public var strictWhen: [StrictCondition]?
        public var vtd: String?
        public var amdvi: String?
        public var smmuv3: String?
    }

    /// What reaches an oops.
    public enum OopsTrigger: String, Sendable, Codable, CaseIterable {
        /// The driver unmaps a buffer whose mapping failed (it ignored the error): `dma_unmap` of that buffer.
        case unmapAfterFailedMap = "unmap-after-failed-map"
        /// A swiotlb bounce that does not fit (larger than a segment, or the pool is full), via `dma_map_page`.
        case bounceDoesNotFit = "bounce-does-not-fit"
    }

    /// A kernel oops or panic the sources show.
    public struct Oops: Sendable, Codable, Equatable {
        /// Stable id (`intel-unmap-bug-on-no-domain`).
        public var id: String
        /// The kernel function that oopses.
        public var function: String
        /// Releases whose code has it.
        public var releases: ReleaseRange
        public var trigger: OopsTrigger
        /// Console lines, with `{bdf}`, `{dev}`, `{driver}`, `{size}` filled in per occurrence.
        public var console: [String]
        /// When it happens, in words.
        public var condition: String
        /// The file@version and line that shows it.
        public var source: String
        /// Smallest mapping that panics (swiotlb's `io_tlb_overflow`, 32 KiB); smaller ones get the overflow buffer.
        public var minBytes: Int?
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
