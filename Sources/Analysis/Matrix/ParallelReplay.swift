import Foundation
import Replay
import Synchronization
import TraceFormat

/// One replayed trace.
public struct ReplayedTrace: Sendable {
    public var index: Int
    public var result: ReplayResult
    public var warnings: [String]
}

/// Parallel replay of independent traces (inside one machine, tools/scale/README.md).
public enum ParallelReplay {
    /// Replays every trace with a non-empty scenario list in `plan`, `threads` at a time (traces in
    /// parallel; a trace alone gets the threads for chunk decompression). Results come back in trace
    /// order; damage warnings are returned (not printed) so that standard error stays in trace order.
    /// `progress`, when given, counts the traces done.
    public static func run(
        traces: [String], plan: WorkPlan, threads: Int, progress: ProgressMeter? = nil,
        engine:
            @escaping @Sendable (_ path: String, _ scenarioIndices: [Int], _ source: any EventSource) throws ->
            ReplayResult
    ) throws -> [ReplayedTrace] {
        let jobs = plan.scenarios.indices.filter { !plan.scenarios[$0].isEmpty }
        let workers = max(1, min(threads, jobs.count))
        // With fewer traces than threads, spare threads decompress chunks; two is what the reader uses best.
        let decode = min(2, max(1, threads / workers))
        let box = ResultBox(count: jobs.count)
        let work: @Sendable (Int) -> Void = { j in
            let t = jobs[j]
            do {
                let opened = try OpenedTrace.open(traces[t], decodeThreads: decode)
                let r = try engine(traces[t], plan.scenarios[t], opened.source)
                box.set(
                    j,
                    .success(
                        ReplayedTrace(index: t, result: r, warnings: opened.damage().map { "\(traces[t]): \($0)" })))
            } catch {
                box.set(j, .failure(error))
            }
            progress?.add(1)
        }
        if workers == 1 {
            for j in jobs.indices {
                work(j)
                if case let .failure(e)? = box.get(j) { throw e }
            }
        } else {
            // Dedicated threads (not the Dispatch pool): one per worker, with a known stack size.
            let next = JobCounter()
            let done = DispatchSemaphore(value: 0)
            for _ in 0..<workers {
                let thread = Thread {
                    while let j = next.take(below: jobs.count) {
                        work(j)
                        if case .failure? = box.get(j) { next.stop() }
                    }
                    done.signal()
                }
                thread.stackSize = 16 << 20
                thread.start()
            }
            for _ in 0..<workers { done.wait() }
        }
        var out: [ReplayedTrace] = []
        for j in jobs.indices {
            switch box.get(j) {
            case let .success(r)?: out.append(r)
            case let .failure(e)?: throw e
            case nil: break
            }
        }
        return out
    }
}

/// Results filled in by worker threads.
private final class ResultBox: Sendable {
    private let slots: Mutex<[Result<ReplayedTrace, any Error>?]>
    init(count: Int) { slots = Mutex(Array(repeating: nil, count: count)) }
    func set(_ i: Int, _ r: Result<ReplayedTrace, any Error>) { slots.withLock { $0[i] = r } }
    func get(_ i: Int) -> Result<ReplayedTrace, any Error>? { slots.withLock { $0[i] } }
}

/// The next job index, shared by workers; `stop` ends the handing out after an error.
private final class JobCounter: Sendable {
    private let state = Mutex((value: 0, stopped: false))
    func take(below n: Int) -> Int? {
        state.withLock { s in
            guard !s.stopped, s.value < n else { return nil }
            defer { s.value += 1 }
            return s.value
        }
    }
    func stop() { state.withLock { $0.stopped = true } }
}
