import Analysis
import ArgumentParser
import Foundation
import TraceFormat

/// `--shard` and `--threads` of `matrix` (tools/scale/README.md): the unit of work is one (trace, scenario) pair
/// (``ShardSpec``, ``WorkPlan``, ``ParallelReplay``).
struct ScaleOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Run only shard I of N (0-based) of the (trace, scenario) units and write a partial result for `dmatrace merge`; `auto` reads the scheduler's variables.",
            discussion: """
                auto reads, in this order: DMATRACE_SHARD=I/N (set it from a CI job matrix, e.g. GitHub Actions, \
                which has no built-in job index); JOB_COMPLETION_INDEX (Kubernetes Indexed Job) with \
                DMATRACE_SHARD_COUNT (set it to the Job's completions); SLURM_ARRAY_TASK_ID with \
                SLURM_ARRAY_TASK_COUNT (Slurm job array; SLURM_ARRAY_TASK_MIN is subtracted, so --array=1-4 works).
                """,
            valueName: "I/N|auto"))
    var shard: String?

    /// Traces are replayed in parallel, and chunk decompression overlaps replay.
    @OptionGroup var threads: ThreadsOption

    func validate() throws {
        _ = try resolvedShard()
    }

    /// The thread count: `--threads`, `DMATRACE_THREADS`, or the online CPUs.
    var threadCount: Int { threads.count(default: NativeThread.onlineCPUs) }

    /// The shard to run, or nil for the whole matrix (a shard that cannot be told is a usage error).
    func resolvedShard() throws -> ShardSpec? {
        guard let shard else { return nil }
        do {
            return try ShardSpec.parse(shard, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError(error.description)
        }
    }
}
