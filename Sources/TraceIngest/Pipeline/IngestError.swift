/// Why an input could not be read at all. Each case names the file and, where it applies, the byte offset.
public enum IngestError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file could not be opened or read.
    case unreadable(path: String, reason: String)
    /// `--format auto` found no importer that recognises the input.
    case unknownFormat(path: String)
    /// The input is not in the format its importer expects (bad magic, impossible header).
    case badFormat(path: String, offset: UInt64, reason: String)
    /// The input (or its compression) ends in the middle of a structure.
    case truncated(path: String, offset: UInt64, reason: String)
    /// A declared size exceeds a limit; nothing was allocated for it.
    case limitExceeded(path: String, offset: UInt64, what: String, value: UInt64, limit: UInt64)
    /// A companion file the format needs is missing (simpletrace without `--trace-events`).
    case missingCompanion(path: String, what: String)

    public var description: String {
        switch self {
        case let .unreadable(p, r): "\(p): cannot read: \(r)"
        case let .unknownFormat(p):
            "\(p): format not recognised; pass --input-format (ftrace, tracedat, qemu-log, simpletrace, dmesg, jsonl)"
        case let .badFormat(p, o, r): "\(p): byte \(o): \(r)"
        case let .truncated(p, o, r): "\(p): byte \(o): truncated: \(r)"
        case let .limitExceeded(p, o, w, v, l): "\(p): byte \(o): \(w) of \(v) exceeds the limit of \(l)"
        case let .missingCompanion(p, w): "\(p): \(w)"
        }
    }
}
