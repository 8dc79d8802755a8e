/// Everything about a trace that is not an event: capture facts, the device table, clock domains and the
/// input files (provenance). Stored as JSON in skippable frames (`schemas/dmat-format.md` §Metadata);
/// later metadata frames replace earlier ones, so a writer can refine facts while it streams.
public struct TraceMetadata: Codable, Sendable, Equatable {
    /// Facts about the captured run (kernel, QEMU, vIOMMU, guest IOMMU state).
    public var capture: CaptureFacts
    /// The device table; ``Event/device`` indexes it.
    public var devices: [DeviceInfo]
    /// Clock domains; ``Event/clock`` indexes it.
    public var clocks: [ClockDomain]
    /// Input files; ``Event/source`` indexes it.
    public var inputs: [InputFile]
    /// User-supplied facts (`--meta key=value`), sorted by key when encoded.
    public var extra: [String: String]

    public init(
        capture: CaptureFacts = CaptureFacts(), devices: [DeviceInfo] = [],
        clocks: [ClockDomain] = [ClockDomain(id: 0, name: "unknown")],
        inputs: [InputFile] = [], extra: [String: String] = [:]
    ) {
        self.capture = capture
        self.devices = devices
        self.clocks = clocks
        self.inputs = inputs
        self.extra = extra
    }

    /// The index of the device named `name` (its `dev_name`, e.g. `0000:00:02.0`), if present.
    public func deviceIndex(named name: String) -> UInt16? {
        devices.firstIndex { $0.name == name }.map { UInt16($0) }
    }
}

/// The guest IOMMU state as the guest kernel set it up.
public enum GuestIOMMUMode: String, Codable, Sendable, CaseIterable {
    /// No IOMMU driver (no DMAR/IVRS, or disabled).
    case off
    /// Identity (pass-through) default domain (`iommu=pt`).
    case passthrough
    /// DMA domain: IOVAs translated by the IOMMU.
    case translated
}

/// IOTLB flush policy of a translated DMA domain.
public enum FlushPolicy: String, Codable, Sendable, CaseIterable {
    case strict, lazy
}

/// Virtio PCI transport flavour of a device.
public enum VirtioTransport: String, Codable, Sendable, CaseIterable {
    /// Legacy-only (device ids 0x1000–0x103f, no VERSION_1).
    case legacy
    /// Transitional: legacy ids with modern capabilities.
    case transitional
    /// Modern-only (`disable-legacy=on`, device ids ≥ 0x1040).
    case modern
}

/// Facts about the captured run that the inputs revealed or the user supplied.
public struct CaptureFacts: Codable, Sendable, Equatable {
    /// Guest `uname -r` (e.g. `6.1.0-56-amd64`).
    public var kernelRelease: String?
    /// Guest kernel command line.
    public var kernelCommandLine: String?
    /// QEMU version (e.g. `7.2.22`).
    public var qemuVersion: String?
    /// QEMU machine type (e.g. `q35`).
    public var machine: String?
    /// vIOMMU kind: `intel-iommu`, `amd-iommu`, `smmuv3`, `virtio-iommu`, or `none`.
    public var viommu: String?
    /// vIOMMU properties that matter (`aw-bits`, `caching-mode`, `intremap`, `dma-translation`, ...).
    public var viommuProperties: [String: String]
    /// Guest IOMMU state.
    public var guestIOMMU: GuestIOMMUMode?
    /// Strict or lazy IOTLB flushing.
    public var flushPolicy: FlushPolicy?
    /// `swiotlb=force` or similar.
    public var swiotlbForced: Bool?
    /// Confidential-computing technology of the guest (`sev`, `tdx`, `s390-pv`), if any.
    public var confidential: String?
    /// How many CPUs the guest had (ftrace's `#P:N` header, a trace.dat's CPU count, the highest `[cpu]` column
    /// seen, or `--meta guest-cpus=N`): the IOVA allocator's range caches and flush queues are per CPU.
    public var guestCPUs: Int?
    /// How guest and host clocks were aligned, if several inputs were merged.
    public var alignment: AlignmentReport?

    public init(
        kernelRelease: String? = nil, kernelCommandLine: String? = nil, qemuVersion: String? = nil,
        machine: String? = nil, viommu: String? = nil, viommuProperties: [String: String] = [:],
        guestIOMMU: GuestIOMMUMode? = nil, flushPolicy: FlushPolicy? = nil, swiotlbForced: Bool? = nil,
        confidential: String? = nil, guestCPUs: Int? = nil, alignment: AlignmentReport? = nil
    ) {
        self.kernelRelease = kernelRelease
        self.kernelCommandLine = kernelCommandLine
        self.qemuVersion = qemuVersion
        self.machine = machine
        self.viommu = viommu
        self.viommuProperties = viommuProperties
        self.guestIOMMU = guestIOMMU
        self.flushPolicy = flushPolicy
        self.swiotlbForced = swiotlbForced
        self.confidential = confidential
        self.guestCPUs = guestCPUs
        self.alignment = alignment
    }

    /// An input showed `n` CPUs: the guest had at least that many.
    public mutating func noteGuestCPUs(_ n: Int) {
        guestCPUs = max(guestCPUs ?? 0, n)
    }
}

/// Quality of the guest/host merge.
public struct AlignmentReport: Codable, Sendable, Equatable {
    /// How the offset was found (`iova-first-translation`, `fault-pair`, `none`).
    public var method: String
    /// Pairs of matching guest/host events used.
    public var pairsMatched: Int
    /// Median absolute residual after alignment, in nanoseconds.
    public var residualSkewNs: Int64
    /// Guest events that could not be attributed to a device.
    public var unattributedEvents: Int
    /// Guest events attributed to a device by inference.
    public var attributedEvents: Int

    public init(
        method: String, pairsMatched: Int, residualSkewNs: Int64, unattributedEvents: Int, attributedEvents: Int
    ) {
        self.method = method
        self.pairsMatched = pairsMatched
        self.residualSkewNs = residualSkewNs
        self.unattributedEvents = unattributedEvents
        self.attributedEvents = attributedEvents
    }
}

/// One device of the trace.
public struct DeviceInfo: Codable, Sendable, Equatable {
    /// The guest's `dev_name()` (`0000:00:02.0`), or the host's name when only the host saw it.
    public var name: String
    /// PCI source id (bus << 8 | devfn) as the vIOMMU sees it.
    public var sid: UInt16?
    /// PCI vendor id.
    public var vendorID: UInt16?
    /// PCI device id (virtio: 0x1000–0x103f legacy/transitional, ≥ 0x1040 modern).
    public var deviceID: UInt16?
    /// Virtio device type (`block`, `net`, ...), nil for non-virtio devices.
    public var virtioType: String?
    /// Virtio transport flavour.
    public var transport: VirtioTransport?
    /// QEMU `iommu_platform` property (offers VIRTIO_F_ACCESS_PLATFORM, bit 33).
    public var iommuPlatform: Bool?
    /// Feature bits the device offered.
    public var featuresOffered: UInt64?
    /// Feature bits the driver acked.
    public var featuresAcked: UInt64?
    /// Guest IOMMU group.
    public var iommuGroup: Int?
    /// Guest driver bound to the device, if known.
    public var driver: String?
    /// False when the device sits on a bypass bus or outside every DRHD scope.
    public var behindIOMMU: Bool?

    public init(
        name: String, sid: UInt16? = nil, vendorID: UInt16? = nil, deviceID: UInt16? = nil,
        virtioType: String? = nil, transport: VirtioTransport? = nil, iommuPlatform: Bool? = nil,
        featuresOffered: UInt64? = nil, featuresAcked: UInt64? = nil, iommuGroup: Int? = nil,
        driver: String? = nil, behindIOMMU: Bool? = nil
    ) {
        self.name = name
        self.sid = sid
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.virtioType = virtioType
        self.transport = transport
        self.iommuPlatform = iommuPlatform
        self.featuresOffered = featuresOffered
        self.featuresAcked = featuresAcked
        self.iommuGroup = iommuGroup
        self.driver = driver
        self.behindIOMMU = behindIOMMU
    }
}

/// A clock domain: timestamps of events with this ``Event/clock`` are nanoseconds in it.
public struct ClockDomain: Codable, Sendable, Equatable {
    /// The id used in ``Event/clock``.
    public var id: UInt8
    /// `guest-boot` (ftrace local/global), `host-realtime` (QEMU log), `host-monotonic` (simpletrace), ...
    public var name: String
    /// Nanoseconds to add to map this domain onto the reference domain (id 0), when aligned.
    public var offsetToReferenceNs: Int64?

    public init(id: UInt8, name: String, offsetToReferenceNs: Int64? = nil) {
        self.id = id
        self.name = name
        self.offsetToReferenceNs = offsetToReferenceNs
    }
}

/// An input file the trace was ingested from (``Event/source`` indexes these).
public struct InputFile: Codable, Sendable, Equatable {
    /// The path as given on the command line (`-` for stdin).
    public var path: String
    /// Importer format id (`ftrace`, `tracedat`, `qemu-log`, `simpletrace`, `dmesg`, `jsonl`).
    public var format: String
    /// Whether ``Event/position`` counts lines (text) or bytes (binary).
    public var positionUnit: PositionUnit
    /// Size of the (decompressed) input in bytes, when known.
    public var bytes: UInt64?

    /// What ``Event/position`` counts for events from this input.
    public enum PositionUnit: String, Codable, Sendable {
        case line, byte
    }

    public init(path: String, format: String, positionUnit: PositionUnit, bytes: UInt64? = nil) {
        self.path = path
        self.format = format
        self.positionUnit = positionUnit
        self.bytes = bytes
    }
}
