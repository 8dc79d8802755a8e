import FoundationEssentials

/// What `dmatrace verify` found in one file: every frame, chunk header, checksum, the chunk order and the index
/// checked. Its `Codable` form is one element of `verify --format json`.
public struct TraceVerification: Codable, Sendable {
    /// `ok`, `damaged` (exit 3) or `unreadable` (not a trace, I/O error: exit 2).
    public var status: String
    public var path: String
    public var events: UInt64 = 0
    public var chunks = 0
    public var complete = false
    public var damage: [TraceDamage] = []
    /// The error that stopped the reading (a damaged header, or why the file is unreadable).
    public var error: String?

    /// Reads and checks the whole file at `path` (`-`: standard input). Never throws: an error is the result.
    public static func check(_ path: String) -> TraceVerification {
        do {
            let reader = try TraceReader(path: path)
            try reader.verify()
            return TraceVerification(
                status: reader.damage.isEmpty ? "ok" : "damaged", path: path, events: reader.eventCount,
                chunks: reader.chunks.count, complete: reader.isComplete, damage: reader.damage)
        } catch let error as TraceFormatError where error.isDamage {
            return TraceVerification(status: "damaged", path: path, error: "\(error)")
        } catch {
            return TraceVerification(status: "unreadable", path: path, error: "\(error)")
        }
    }

    /// The text form (not yet escaped for a terminal): nothing for an unreadable file (its error goes to stderr),
    /// and nothing for an intact one when `quiet`.
    public func text(quiet: Bool = false) -> [String] {
        switch (status, error) {
        case ("ok", _):
            return quiet ? [] : ["\(path): ok: \(events) events in \(chunks) chunks, checksums verified"]
        case ("damaged", let e?):
            return ["\(path): DAMAGED: \(e)"]
        case ("damaged", nil):
            let lost = damage.compactMap(\.lostEvents).reduce(0, +)
            return ["\(path): DAMAGED: \(damage.count) problem(s); \(events) events readable, at least \(lost) lost"]
                + damage.map { "  \($0)" }
        default:
            return []
        }
    }

    /// The JSON form of several results: an array, sorted keys, pretty-printed, slashes unescaped.
    public static func json(_ results: [TraceVerification]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(results), as: UTF8.self)
    }
}
