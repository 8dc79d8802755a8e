/// The compact chunk layout's encoder and decoder as plain functions on bytes, for the fuzzer and for tools
/// that handle chunk payloads themselves (`schemas/dmat-format.md` §9a). They allocate per call; the reader
/// and writer use reusable instances instead.
public enum CompactChunk {
    /// Encodes 56-byte records (a multiple of 56 bytes, 1 … ``DMATFormat/maxChunkEvents`` records) as a compact
    /// payload, whatever its size; nil for no records.
    public static func encode(records: UnsafeRawBufferPointer) -> [UInt8]? {
        guard records.count % Event.recordSize == 0 else { return nil }
        // The payload lives in the encoder's buffer: copy it out while the encoder is alive.
        let encoder = CompactChunkEncoder()
        return withExtendedLifetime(encoder) { encoder.encode(records, anySize: true).map { [UInt8]($0) } }
    }

    /// Decodes a compact payload that a chunk header says holds `eventCount` records into their 56-byte rows.
    public static func decode(payload: UnsafeRawBufferPointer, eventCount: Int) -> Result<[UInt8], CompactChunkError> {
        guard eventCount >= 0, eventCount <= DMATFormat.maxChunkEvents else {
            return .failure(
                CompactChunkError(message: "\(eventCount) records is outside 0...\(DMATFormat.maxChunkEvents)"))
        }
        let out = UnsafeMutableRawBufferPointer.allocate(
            byteCount: max(1, eventCount * Event.recordSize), alignment: 16)
        defer { out.deallocate() }
        do {
            try CompactChunkDecoder().decode(payload, eventCount: eventCount, into: out)
        } catch {
            return .failure(error)
        }
        return .success([UInt8](UnsafeRawBufferPointer(rebasing: out[..<(eventCount * Event.recordSize)])))
    }
}
