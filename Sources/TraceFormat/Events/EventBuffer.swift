/// An in-memory trace: events, strings and metadata. Used by tests, by JSONL and importer round trips,
/// and by ingest when inputs must be merged before they can be written in time order.
public struct EventBuffer: EventSource, EventSink, Sendable, Equatable {
    /// The events in order.
    public var events: [Event]
    /// The string table; an id is an index.
    public private(set) var strings: [String]
    public var metadata: TraceMetadata
    private var stringIDs: [String: UInt32]

    public init(metadata: TraceMetadata = TraceMetadata(), events: [Event] = [], strings: [String] = []) {
        self.metadata = metadata
        self.events = events
        self.strings = strings
        var ids: [String: UInt32] = [:]
        for (i, s) in strings.enumerated() where ids[s] == nil { ids[s] = UInt32(i) }
        self.stringIDs = ids
    }

    public func string(_ id: UInt32) -> String? {
        Int(exactly: id).flatMap { $0 < strings.count ? strings[$0] : nil }
    }

    public func forEachEvent(_ body: (Int, Event) throws -> Void) throws {
        for (i, e) in events.enumerated() { try body(i, e) }
    }

    public mutating func append(_ event: Event) { events.append(event) }

    public mutating func intern(_ string: String) -> UInt32 {
        if let id = stringIDs[string] { return id }
        let id = UInt32(strings.count)
        strings.append(string)
        stringIDs[string] = id
        return id
    }

    public mutating func device(_ info: DeviceInfo) -> UInt16 {
        metadata.devices.register(info)
    }

    public static func == (a: EventBuffer, b: EventBuffer) -> Bool {
        a.events == b.events && a.strings == b.strings && a.metadata == b.metadata
    }
}

extension Array where Element == DeviceInfo {
    /// Adds `info` or merges its non-nil fields into the entry of the same name; returns the index.
    public mutating func register(_ info: DeviceInfo) -> UInt16 {
        if let i = firstIndex(where: { $0.name == info.name }) {
            self[i].merge(info)
            return UInt16(i)
        }
        append(info)
        return UInt16(count - 1)
    }
}

extension DeviceInfo {
    /// Fills fields that `other` knows and `self` does not (or overrides with `other`'s non-nil values).
    public mutating func merge(_ other: DeviceInfo) {
        sid = other.sid ?? sid
        vendorID = other.vendorID ?? vendorID
        deviceID = other.deviceID ?? deviceID
        virtioType = other.virtioType ?? virtioType
        transport = other.transport ?? transport
        iommuPlatform = other.iommuPlatform ?? iommuPlatform
        featuresOffered = other.featuresOffered ?? featuresOffered
        featuresAcked = other.featuresAcked ?? featuresAcked
        iommuGroup = other.iommuGroup ?? iommuGroup
        driver = other.driver ?? driver
        behindIOMMU = other.behindIOMMU ?? behindIOMMU
    }
}
