/// One pinpointed occurrence of an outcome: the event that shows it and where it came from in the capture.
public struct Occurrence: Sendable, Codable, Equatable {
    /// Index of the event in the trace (0-based, file order).
    public var eventIndex: Int
    /// Timestamp of that event (ns, reference clock).
    public var timestamp: UInt64
    /// Input file of the original capture (path from the trace's metadata), if known.
    public var sourceFile: String?
    /// Line (text input) or byte offset (binary input) in ``sourceFile``.
    public var sourcePosition: UInt64?
    /// Address the device used in this scenario (IOVA or GPA).
    public var deviceAddress: UInt64
    /// The GPA of the buffer the access was meant for, when known.
    public var bufferAddress: UInt64?
    /// Size of the access or buffer in bytes.
    public var size: UInt64
    /// True for a device write (DMA from device).
    public var write: Bool
    /// Fault reason code in the vIOMMU's numbering (VT-d 0x02/0x04/0x05/0x06, ...), for faults.
    public var reason: UInt32?

    public init(
        eventIndex: Int, timestamp: UInt64, sourceFile: String?, sourcePosition: UInt64?,
        deviceAddress: UInt64, bufferAddress: UInt64?, size: UInt64, write: Bool, reason: UInt32?
    ) {
        self.eventIndex = eventIndex
        self.timestamp = timestamp
        self.sourceFile = sourceFile
        self.sourcePosition = sourcePosition
        self.deviceAddress = deviceAddress
        self.bufferAddress = bufferAddress
        self.size = size
        self.write = write
        self.reason = reason
    }
}
