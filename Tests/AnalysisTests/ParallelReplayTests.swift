import Foundation
import Replay
import Testing
import TraceFormat
import TraceIngest
import Analysis

/// Parallel replay of independent traces (moved from the CLI): results in trace order whatever the threads,
/// progress counted, and the first error thrown.
@Suite struct ParallelReplayTests {
    static func traces(_ n: Int, in dir: String) throws -> [String] {
        try (0..<n).map { i in
            let path = "\(dir)/t\(i).dmat"
            var w = try TraceWriter(path: path)
            _ = try SyntheticWorkload(options: .init(events: 500 * (i + 1), seed: UInt64(i + 1))).generate(into: &w)
            try w.finish()
            return path
        }
    }

    /// An "engine" that only counts events (what matters here is the scheduling).
    static let counting: @Sendable (String, [Int], any EventSource) throws -> ReplayResult = { path, _, source in
        var n = 0
        try source.forEachEvent { _, _ in n += 1 }
        return ReplayResult(trace: path, events: n, scenarios: [])
    }

    @Test func resultsComeBackInTraceOrderForAnyThreadCount() throws {
        let dir = NSTemporaryDirectory() + "parallel-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let traces = try Self.traces(4, in: dir)
        let plan = WorkPlan(traces: 4, scenarios: 2, shard: ShardSpec(index: 1, count: 2))  // traces 2 and 3
        let progress = ProgressMeter(unit: "traces")
        let one = try ParallelReplay.run(traces: traces, plan: plan, threads: 1, engine: Self.counting)
        let three = try ParallelReplay.run(
            traces: traces, plan: plan, threads: 3, progress: progress, engine: Self.counting)
        #expect(one.map(\.index) == [2, 3])
        #expect(three.map(\.index) == [2, 3])
        #expect(one.map(\.result) == three.map(\.result))
        #expect(progress.done == 2)
        #expect(three.allSatisfy { $0.warnings.isEmpty })
    }

    /// Twin: a trace that cannot be opened fails the whole run with its error.
    @Test func aMissingTraceFailsTheRun() throws {
        let plan = WorkPlan(traces: 2, scenarios: 1, shard: nil)
        #expect(throws: TraceFormatError.self) {
            _ = try ParallelReplay.run(
                traces: ["/nonexistent/a.dmat", "/nonexistent/b.dmat"], plan: plan, threads: 2, engine: Self.counting)
        }
    }
}
