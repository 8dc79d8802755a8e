import Foundation
import Models
import Replay
import TraceFormat

/// Opens a trace for replay: a `.dmat` file (streamed chunk by chunk) or a `.jsonl` event file.
enum TraceOpening {
    /// Runs `engine` on `path`; returns the result and whether the trace was damaged (exit status 3).
    static func replay(_ path: String, engine: (any EventSource) throws -> ReplayResult) throws -> (ReplayResult, damaged: Bool) {
        if path.hasSuffix(".jsonl") {
            var buffer = EventBuffer()
            _ = try JSONLCodec.decode(try String(contentsOfFile: path, encoding: .utf8), path: path, into: &buffer)
            return (try engine(buffer), false)
        }
        let reader = try TraceReader(path: path)
        let result = try engine(reader)
        for d in reader.damage { warn("\(path): \(d)") }
        return (result, !reader.damage.isEmpty)
    }

    /// The catalog: built-ins plus `--models` directories.
    static func catalog(_ dirs: [String]) throws -> ModelCatalog {
        try ModelCatalog.load(userDirectories: dirs)
    }

    /// JSON with sorted keys (deterministic).
    static func json(_ value: some Encodable) throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try enc.encode(value), as: UTF8.self)
    }
}
