import ArgumentParser
import Foundation
import Models
import Replay
import TraceFormat

#if canImport(Glibc)
import Glibc
#endif

/// `--shard` and `--threads` of `matrix` (tools/scale/README.md): the unit of work is one (trace, scenario) pair.
struct ScaleOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Run only shard I of N (0-based) of the (trace, scenario) units and write a partial result for `dmatrace merge`; `auto` reads the scheduler's variables.",
        discussion: """
            auto reads, in this order: DMATRACE_SHARD=I/N (set it from a CI job matrix, e.g. GitHub Actions, \
            which has no built-in job index); JOB_COMPLETION_INDEX (Kubernetes Indexed Job) with \
            DMATRACE_SHARD_COUNT (set it to the Job's completions); SLURM_ARRAY_TASK_ID with \
            SLURM_ARRAY_TASK_COUNT (Slurm job array; SLURM_ARRAY_TASK_MIN is subtracted, so --array=1-4 works).
            """,
        valueName: "I/N|auto"))
    var shard: String?

    @Option(help: "Worker threads (default: DMATRACE_THREADS, else the number of online CPUs): traces are replayed in parallel, and chunk decompression overlaps replay.")
    var threads: Int?

    func validate() throws {
        if let threads, !(1...256).contains(threads) { throw ValidationError("--threads must be in 1...256") }
        if let shard { _ = try Self.parseShard(shard, environment: ProcessInfo.processInfo.environment) }
    }

    /// The thread count: `--threads`, `DMATRACE_THREADS`, or the online CPUs.
    var threadCount: Int {
        if let threads { return threads }
        if let v = ProcessInfo.processInfo.environment["DMATRACE_THREADS"], let n = Int(v), (1...256).contains(n) { return n }
        return NativeThread.onlineCPUs
    }

    /// The shard to run, or nil for the whole matrix.
    func resolvedShard() throws -> ShardSpec? {
        guard let shard else { return nil }
        return try Self.parseShard(shard, environment: ProcessInfo.processInfo.environment)
    }

    /// `I/N` or `auto` (from `environment`).
    static func parseShard(_ text: String, environment env: [String: String]) throws -> ShardSpec {
        if text != "auto" { return try ShardSpec(text, origin: "--shard") }
        if let v = env["DMATRACE_SHARD"] { return try ShardSpec(v, origin: "DMATRACE_SHARD") }
        if let i = env["JOB_COMPLETION_INDEX"] {
            guard let n = env["DMATRACE_SHARD_COUNT"] else {
                throw ValidationError("JOB_COMPLETION_INDEX is set but DMATRACE_SHARD_COUNT (the Job's completions) is not")
            }
            return try ShardSpec("\(i)/\(n)", origin: "JOB_COMPLETION_INDEX/DMATRACE_SHARD_COUNT")
        }
        if let id = env["SLURM_ARRAY_TASK_ID"], let n = env["SLURM_ARRAY_TASK_COUNT"] {
            guard let idv = Int(id), let minv = Int(env["SLURM_ARRAY_TASK_MIN"] ?? "0") else {
                throw ValidationError("SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_MIN are not integers")
            }
            return try ShardSpec("\(idv - minv)/\(n)", origin: "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT")
        }
        throw ValidationError("--shard auto: none of DMATRACE_SHARD, JOB_COMPLETION_INDEX (+DMATRACE_SHARD_COUNT), SLURM_ARRAY_TASK_ID (+SLURM_ARRAY_TASK_COUNT) is set")
    }
}

/// Shard `index` of `count`.
struct ShardSpec: Codable, Equatable {
    var index: Int
    var count: Int

    init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    init(_ text: String, origin: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, n <= 100_000, i >= 0, i < n else {
            throw ValidationError("\(origin): shard must be I/N with 0 <= I < N <= 100000, got '\(text)'")
        }
        index = i
        count = n
    }

    /// The units of shard `index`: a contiguous block of the `units` (trace-major) so that a shard decodes
    /// as few traces as possible; blocks differ in size by at most one.
    func units(of total: Int) -> Range<Int> {
        let lo = total * index / count
        let hi = total * (index + 1) / count
        return lo..<hi
    }
}

/// Which scenarios of which trace to replay.
struct WorkPlan {
    /// Per trace index, the scenario indices to replay (empty: skip the trace).
    var scenarios: [[Int]]

    /// Every (trace, scenario) unit, or the shard's block of them.
    init(traces: Int, scenarios: Int, shard: ShardSpec?) {
        let units = shard?.units(of: traces * scenarios) ?? 0..<(traces * scenarios)
        var per = [[Int]](repeating: [], count: traces)
        for u in units { per[u / scenarios].append(u % scenarios) }
        self.scenarios = per
    }
}

/// One replayed trace.
struct ReplayedTrace {
    var index: Int
    var result: ReplayResult
    var warnings: [String]
}

/// Parallel replay of independent traces (inside one machine, tools/scale/README.md).
enum ParallelReplay {
    /// Replays every trace with a non-empty scenario list in `plan`, `threads` at a time (traces in
    /// parallel; a trace alone gets the threads for chunk decompression). Results come back in trace
    /// order; damage warnings are returned (not printed) so that standard error stays in trace order.
    static func run(
        traces: [String], plan: WorkPlan, threads: Int,
        engine: @escaping @Sendable (_ path: String, _ scenarioIndices: [Int], _ source: any EventSource) throws -> ReplayResult
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
                box.set(j, .success(ReplayedTrace(index: t, result: r, warnings: opened.damage().map { "\(traces[t]): \($0)" })))
            } catch {
                box.set(j, .failure(error))
            }
        }
        if workers == 1 {
            for j in jobs.indices {
                work(j)
                if case let .failure(e)? = box.get(j) { throw e }
            }
        } else {
            // Dedicated threads (not the Dispatch pool): one per worker, with a known stack size.
            let next = Counter()
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
private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<ReplayedTrace, any Error>?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<ReplayedTrace, any Error>) { lock.withLock { slots[i] = r } }
    func get(_ i: Int) -> Result<ReplayedTrace, any Error>? { lock.withLock { slots[i] } }
}

/// The next job index, shared by workers; `stop` ends the handing out after an error.
private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    private var stopped = false
    func take(below n: Int) -> Int? {
        lock.withLock {
            guard !stopped, value < n else { return nil }
            defer { value += 1 }
            return value
        }
    }
    func stop() { lock.withLock { stopped = true } }
}
