import Analysis
import FoundationEssentials
import Models
import Replay
import TraceFormat

/// The partial result one `matrix --shard I/N` writes: the replay results of its (trace, scenario) units,
/// with what is needed to check that the parts belong together. ``merge(_:)`` recombines the parts into the
/// results of the unsharded run.
public struct ShardPart: Codable, Sendable {
    /// One trace's replay under the shard's scenarios of it.
    public struct Piece: Codable, Sendable {
        /// Index into ``traces``.
        public var trace: Int
        /// Indices into ``scenarios``, in the order of `result.scenarios`.
        public var scenarios: [Int]
        public var result: ReplayResult

        public init(trace: Int, scenarios: [Int], result: ReplayResult) {
            self.trace = trace
            self.scenarios = scenarios
            self.result = result
        }
    }

    public static let formatName = "dmatrace-matrix-shard"
    /// 2 added ``axis``.
    public static let currentVersion = 2

    public var format = ShardPart.formatName
    public var version = ShardPart.currentVersion
    public var shard: ShardSpec
    /// The command that made the part (`matrix`).
    public var command: String
    /// Every trace of the whole run, as given.
    public var traces: [String]
    /// Every scenario id of the whole run, in output order.
    public var scenarios: [String]
    /// The kernel axis of the whole run (eras, kernels left off it), for the merged report's answer.
    public var axis: MatrixAxis?
    public var pieces: [Piece]

    public init(
        shard: ShardSpec, command: String, traces: [String], scenarios: [String], axis: MatrixAxis?, pieces: [Piece]
    ) {
        self.shard = shard
        self.command = command
        self.traces = traces
        self.scenarios = scenarios
        self.axis = axis
        self.pieces = pieces
    }

    /// The part of `shard` of a matrix run: the pieces `replayed` (``MatrixRun/replay(catalog:meter:counting:)``).
    public init(run: MatrixRun, shard: ShardSpec, replayed: [ReplayedTrace]) {
        self.init(
            shard: shard, command: "matrix", traces: run.traces, scenarios: run.scenarios.map(\.id), axis: run.axis,
            pieces: replayed.map {
                Piece(trace: $0.index, scenarios: run.plan.scenarios[$0.index], result: $0.result)
            })
    }

    /// The part file's text (``ReportJSON``, final newline).
    public func json() throws -> String { try ReportJSON.string(self) }

    /// Reads and checks a part file.
    public static func load(_ path: String) throws -> ShardPart {
        let bytes = try readWholeFile(path)
        let part: ShardPart
        do {
            part = try BoundedJSON.decode(ShardPart.self, from: Data(bytes))
        } catch {
            throw MergeError.unreadable(file: path, reason: DecodingErrorText.describe(error, data: bytes))
        }
        guard part.format == ShardPart.formatName else {
            throw MergeError.unreadable(file: path, reason: "format is '\(part.format)'")
        }
        guard part.version == ShardPart.currentVersion else {
            throw MergeError.unreadable(
                file: path, reason: "version \(part.version), this dmatrace reads \(ShardPart.currentVersion)")
        }
        return part
    }

    /// The command and the per-trace results (trace order, scenarios in run order) of the whole run.
    public static func merge(_ parts: [(path: String, part: ShardPart)]) throws -> (String, [ReplayResult]) {
        guard let (firstPath, first) = parts.first else { return ("matrix", []) }
        let n = first.shard.count
        var seenShards = [String?](repeating: nil, count: n)
        let nt = first.traces.count, ns = first.scenarios.count
        // unit (t, s) -> scenario result; per trace the events and the notes common to every piece.
        var cells = [[ScenarioResult?]](repeating: [ScenarioResult?](repeating: nil, count: ns), count: nt)
        var events = [Int?](repeating: nil, count: nt)
        var notes = [[String]?](repeating: nil, count: nt)
        for (path, p) in parts {
            guard p.command == first.command, p.traces == first.traces, p.scenarios == first.scenarios,
                p.axis == first.axis
            else {
                throw MergeError.mismatch(
                    file: path, what: "other command, traces, scenarios or kernel axis than \(firstPath)")
            }
            guard p.shard.count == n, (0..<n).contains(p.shard.index) else {
                throw MergeError.mismatch(file: path, what: "shard \(p.shard.index)/\(p.shard.count), not one of \(n)")
            }
            if let other = seenShards[p.shard.index] {
                throw MergeError.mismatch(file: path, what: "shard \(p.shard.index)/\(n) given twice (also \(other))")
            }
            seenShards[p.shard.index] = path
            let expected = WorkPlan(traces: nt, scenarios: ns, shard: p.shard).scenarios
            var got = [[Int]](repeating: [], count: nt)
            for piece in p.pieces {
                guard (0..<nt).contains(piece.trace), piece.scenarios.count == piece.result.scenarios.count,
                    piece.scenarios.allSatisfy({ (0..<ns).contains($0) })
                else {
                    throw MergeError.unreadable(file: path, reason: "a piece's trace or scenario index is out of range")
                }
                got[piece.trace] += piece.scenarios
                for (k, s) in piece.scenarios.enumerated() { cells[piece.trace][s] = piece.result.scenarios[k] }
                if let e = events[piece.trace], e != piece.result.events {
                    throw MergeError.mismatch(
                        file: path,
                        what: "\(first.traces[piece.trace]) has \(piece.result.events) events, another part \(e)")
                }
                events[piece.trace] = piece.result.events
                // Notes that depend on the scenario subset (e.g. "recorded scenario not requested") hold for the
                // whole run only when every part says so: keep the notes all parts share, in order.
                notes[piece.trace] =
                    notes[piece.trace].map { have in have.filter(piece.result.notes.contains) } ?? piece.result.notes
            }
            guard got == expected else {
                throw MergeError.mismatch(file: path, what: "its units are not those of shard \(p.shard.index)/\(n)")
            }
        }
        let missing = seenShards.indices.filter { seenShards[$0] == nil }
        guard missing.isEmpty else { throw MergeError.missingShards(missing, of: n) }
        var results: [ReplayResult] = []
        for t in 0..<nt {
            let scenarios = cells[t].compactMap { $0 }
            guard !scenarios.isEmpty, let e = events[t] else { continue }
            results.append(ReplayResult(trace: first.traces[t], events: e, scenarios: scenarios, notes: notes[t] ?? []))
        }
        return (first.command, results)
    }
}

/// Errors of `merge` (exit status 2).
public enum MergeError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case mismatch(file: String, what: String)
    case missingShards([Int], of: Int)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): "\(file): not a dmatrace matrix shard: \(reason)"
        case let .mismatch(file, what): "\(file): does not belong with the first part: \(what)"
        case let .missingShards(list, n): "shard(s) \(list.map(String.init).joined(separator: ", ")) of \(n) missing"
        }
    }
}
