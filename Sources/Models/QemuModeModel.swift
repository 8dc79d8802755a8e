/// A QEMU mode model: which vIOMMU the VM has, how virtio devices are configured, what the firmware tables
/// claim, and how faults are recorded (docs/replay.md). Loaded from a JSON file
/// (`kind: "qemu-mode"`); the replay engine interprets the fields, it never switches on the id.
public struct QemuModeModel: Sendable, Codable, Equatable {
    /// Stable id used in scenarios (`qemu-viommu-virtio-translated`).
    public var id: String
    /// One-line description.
    public var title: String
    /// QEMU versions that have this mode (`2.9` and later); a scenario naming another version is refused.
    public var versions: ReleaseRange?
    /// Behaviour that depends on the QEMU version or the machine type, applied in order for the scenario's
    /// (`qemu-amd-iommu:10.0`, `qemu-viommu-virtio-translated:10.0/9.1`).
    public var byVersion: [VersionRule]?
    /// True for modes QEMU never had (the origin thread's passthrough flag).
    public var hypothesis: Bool
    /// Where the behaviour comes from: QEMU version, file, function.
    public var sources: [String]
    /// Free-form remarks.
    public var notes: [String]?
    /// `none`, `intel-iommu`, `amd-iommu`, `smmuv3` or `virtio-iommu`.
    public var viommu: String
    /// False for an IR-only intel-iommu (`dma-translation=off`: SAGAW = 0, no DMA translation).
    public var dmaTranslation: Bool
    /// vIOMMU input address width (`aw-bits`); device addresses at or above 2^awBits fault (VT-d 0x04).
    public var awBits: Int
    /// What the firmware table says about PCI devices: `none`, `catch-all` (INCLUDE_PCI_ALL) or `explicit` scopes.
    public var scope: String
    /// True when virtio devices sit on a `bypass_iommu` bus: outside the table's scope and untranslated.
    public var bypassBus: Bool
    /// virtio-iommu `boot-bypass`: endpoints not attached to a domain bypass translation.
    public var bootBypass: Bool
    /// intel-iommu `caching-mode=on` (QEMU's default is off); absent: false.
    public var cachingMode: Bool?
    /// amd-iommu advertises NpCache (QEMU's `AMDVI_CAPAB_FEATURES` always does); absent: false.
    public var npCache: Bool?
    /// Virtio device configuration.
    public var virtio: VirtioConfig
    /// Fault recording.
    public var faults: FaultRecording

    /// Per-device `iommu_platform` setting.
    public enum IOMMUPlatform: String, Sendable, Codable, CaseIterable {
        /// On for every device that can have it (modern-only); QEMU refuses it on legacy/transitional devices.
        case on
        /// Off: bit 33 not offered, DMA goes to plain memory.
        case off
        /// As the trace recorded it per device.
        case asRecorded = "as-recorded"
    }

    /// Virtio transport flavour forced by the mode.
    public enum Transport: String, Sendable, Codable, CaseIterable {
        case asRecorded = "as-recorded"
        /// `disable-legacy=on` for every virtio device.
        case modernOnly = "modern-only"
    }

    /// Virtio configuration of the mode.
    public struct VirtioConfig: Sendable, Codable, Equatable {
        /// `iommu_platform`.
        public var iommuPlatform: IOMMUPlatform
        /// QEMU ≥ 2.9 `virtio_validate_features()`: FEATURES_OK refused when bit 33 is offered but not acked.
        public var accessPlatformMandatory: Bool
        /// Transport override.
        public var transport: Transport
        /// Hypothetical passthrough flag: bit 33 offered but optional, device DMA untranslated; kernels that ack
        /// bit 33 put the device in an identity domain, older kernels ignore the flag and bypass the DMA API.
        public var passthroughFlag: Bool
    }

    /// How the vIOMMU records faults.
    public struct FaultRecording: Sendable, Codable, Equatable {
        /// VT-d fault compression: while a fault record of the same source id is pending, new faults are not recorded.
        public var compression: Bool
        /// How long a record stays pending before the guest's fault handler clears it (µs).
        public var serviceTimeUs: Int
        /// A DMA to an IOVA without a PTE is blocked but no fault is recorded anywhere (no vIOMMU event, no
        /// guest log): QEMU 7.2 amd-iommu's amdvi_page_walk() returns on a zero PTE before amdvi_page_fault()
        /// (measured in traces/raw/amd-viommu: the stray edu DMA gives `amdvi_translation_result ... hpa 0x0`,
        /// no amdvi_page_fault, no AMD-Vi event, and the write never reaches RAM). Absent means false.
        public var silentNotPresent: Bool?
        /// `garbled`: the event log entries QEMU writes cannot be decoded by the guest (amd-iommu before 7.1:
        /// `amdvi_encode_event()` put the type at bits 55-62 and the address at bit 63, second quadword left
        /// uninitialized), so no guest line is predicted. Absent means `valid`.
        public var eventLog: EventLog?
    }

    /// Whether the guest can decode the vIOMMU's fault records.
    public enum EventLog: String, Sendable, Codable, CaseIterable {
        case valid, garbled
    }

    /// A change that depends on the QEMU version (`qemu`) and/or the machine type version (`machine`,
    /// `pc-q35-9.1` is 9.1); every other field is optional and replaces the mode's value.
    public struct VersionRule: Sendable, Codable, Equatable {
        public var qemu: ReleaseRange?
        public var machine: ReleaseRange?
        /// The commit or file@version that shows the change.
        public var source: String
        /// Set when the behaviour at these versions still needs a real boot to confirm.
        public var verify: String?
        public var awBits: Int?
        public var dmaTranslation: Bool?
        public var bootBypass: Bool?
        public var silentNotPresent: Bool?
        public var eventLog: EventLog?
    }

    /// True when the VM has a vIOMMU.
    public var hasVIOMMU: Bool { viommu != "none" }
}
