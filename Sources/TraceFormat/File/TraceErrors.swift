/// A failure that stops reading or writing a trace. Damage a reader can skip is a ``TraceDamage`` instead.
public enum TraceFormatError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be opened, read, written or renamed.
    case io(path: String, operation: String, message: String)
    /// The input does not start with a dmat header frame.
    case notATrace(path: String, reason: String)
    /// The input ended inside the header frame: nothing can be read.
    case truncatedHeader(path: String, offset: UInt64, needed: UInt64)
    /// The header frame is present but unusable (bad checksum, wrong record size, bad schema).
    case badHeader(path: String, offset: UInt64, reason: String)
    /// The file's major version is newer than this reader.
    case newerMajorVersion(path: String, found: UInt16, supported: UInt16)
    /// A size declared by the file (or asked of the writer) exceeds a limit.
    case limitExceeded(path: String, offset: UInt64, what: String, limit: String)
    /// zstd compression failed.
    case compression(path: String, message: String)
    /// A programming error by the caller (bad option, use after finish, second pass over stdin).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .io(let path, let op, let message): "\(path): cannot \(op): \(message)"
        case .notATrace(let path, let reason): "\(path): not a .dmat trace: \(reason)"
        case .truncatedHeader(let path, let offset, let needed):
            "\(path): truncated at byte \(offset): the header frame needs \(needed) bytes"
        case .badHeader(let path, let offset, let reason): "\(path): bad header frame at byte \(offset): \(reason)"
        case .newerMajorVersion(let path, let found, let supported):
            "\(path): format version \(found).x is newer than this dmatrace reads (\(supported).x); upgrade dmatrace"
        case .limitExceeded(let path, let offset, let what, let limit):
            "\(path): at byte \(offset): \(what) exceeds the limit (\(limit))"
        case .compression(let path, let message): "\(path): compression failed: \(message)"
        case .invalidArgument(let message): message
        }
    }

    /// True for the errors that mean "this input is a damaged trace" rather than "not a trace / I/O".
    public var isDamage: Bool {
        switch self {
        case .truncatedHeader, .badHeader: true
        default: false
        }
    }
}

/// Damage a reader found and skipped: what, where (byte offset, chunk number) and how many events it cost.
public struct TraceDamage: Sendable, Equatable, CustomStringConvertible, Codable {
    /// The kind of damage.
    public enum Kind: String, Sendable, Codable {
        /// The file ends inside a frame or chunk.
        case truncated
        /// A chunk's zstd content checksum does not match.
        case checksum
        /// A chunk's zstd frame is corrupt (other than checksum) or its size disagrees with its header.
        case corruptChunk = "corrupt_chunk"
        /// A chunk header frame failed its CRC or declares impossible sizes.
        case badChunkHeader = "bad_chunk_header"
        /// A side frame (strings, metadata) failed its CRC or could not be parsed.
        case badSideFrame = "bad_side_frame"
        /// Chunk numbers jump: chunks are missing.
        case sequenceGap = "sequence_gap"
        /// A zstd data frame without a chunk header.
        case orphanFrame = "orphan_frame"
        /// Bytes that are no frame at all; the reader searched forward for the next frame.
        case garbage
        /// The file ends without the index (the writer did not finish).
        case missingIndex = "missing_index"
        /// The index disagrees with the chunks found.
        case badIndex = "bad_index"
    }

    public var kind: Kind
    /// File offset where the damage starts.
    public var offset: UInt64
    /// The chunk concerned, when known.
    public var chunk: UInt32?
    /// Records lost, when known (from a valid chunk header).
    public var lostEvents: UInt64?
    /// What was found, in words.
    public var message: String

    public init(kind: Kind, offset: UInt64, chunk: UInt32? = nil, lostEvents: UInt64? = nil, message: String) {
        self.kind = kind
        self.offset = offset
        self.chunk = chunk
        self.lostEvents = lostEvents
        self.message = message
    }

    public var description: String {
        var s = chunk.map { "chunk \($0) at byte \(offset)" } ?? "byte \(offset)"
        s += ": \(kind.rawValue): \(message)"
        if let lost = lostEvents { s += " (\(lost) events lost)" }
        return s
    }
}
