extension Event {
    /// Bytes of one on-disk record.
    public static let recordSize = 56

    /// Decodes the 56-byte little-endian record at `p` without allocating.
    ///
    /// Returns nil when the kind byte names no ``EventKind`` this build knows (a newer minor version's
    /// kind): the reader skips and counts such records. The caller guarantees 56 readable bytes.
    @inlinable @inline(__always)
    public init?(record p: UnsafeRawPointer) {
        guard let kind = EventKind(rawValue: p.load(as: UInt8.self)) else { return nil }
        self.init(kind: kind)
        flags = p.load(fromByteOffset: 1, as: UInt8.self)
        detail = p.load(fromByteOffset: 2, as: UInt8.self)
        clock = p.load(fromByteOffset: 3, as: UInt8.self)
        device = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        source = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
        timestamp = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        address = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        address2 = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        size = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 32, as: UInt64.self))
        aux = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 40, as: UInt32.self))
        aux2 = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 44, as: UInt32.self))
        provenance = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 48, as: UInt64.self))
    }

    /// Decodes record number `index` of `records` (bounds-checked), nil for unknown kinds or out of range.
    @inlinable
    public init?(records: UnsafeRawBufferPointer, index: Int) {
        guard index >= 0, index < records.count / Event.recordSize, let base = records.baseAddress else { return nil }
        self.init(record: base + index &* Event.recordSize)
    }

    /// Writes the 56-byte little-endian record to `p` (56 writable bytes).
    @inlinable @inline(__always)
    public func store(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: kind.rawValue, toByteOffset: 0, as: UInt8.self)
        p.storeBytes(of: flags, toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: detail, toByteOffset: 2, as: UInt8.self)
        p.storeBytes(of: clock, toByteOffset: 3, as: UInt8.self)
        p.storeBytes(of: device.littleEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: source.littleEndian, toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: timestamp.littleEndian, toByteOffset: 8, as: UInt64.self)
        p.storeBytes(of: address.littleEndian, toByteOffset: 16, as: UInt64.self)
        p.storeBytes(of: address2.littleEndian, toByteOffset: 24, as: UInt64.self)
        p.storeBytes(of: size.littleEndian, toByteOffset: 32, as: UInt64.self)
        p.storeBytes(of: aux.littleEndian, toByteOffset: 40, as: UInt32.self)
        p.storeBytes(of: aux2.littleEndian, toByteOffset: 44, as: UInt32.self)
        p.storeBytes(of: provenance.littleEndian, toByteOffset: 48, as: UInt64.self)
    }

    /// The record as 56 bytes.
    public var recordBytes: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: Event.recordSize) { buf, n in
            store(to: UnsafeMutableRawPointer(buf.baseAddress!))
            n = Event.recordSize
        }
    }

    /// The value of a generic slot.
    public func value(of slot: RecordSlot) -> UInt64 {
        switch slot {
        case .address: address
        case .address2: address2
        case .size: size
        case .aux: UInt64(aux)
        case .aux2: UInt64(aux2)
        case .detail: UInt64(detail)
        }
    }

    /// Sets a generic slot; returns false when `value` does not fit the slot's width.
    @discardableResult
    public mutating func set(_ slot: RecordSlot, _ value: UInt64) -> Bool {
        switch slot {
        case .address: address = value
        case .address2: address2 = value
        case .size: size = value
        case .aux: guard let v = UInt32(exactly: value) else { return false }; aux = v
        case .aux2: guard let v = UInt32(exactly: value) else { return false }; aux2 = v
        case .detail: guard let v = UInt8(exactly: value) else { return false }; detail = v
        }
        return true
    }
}
