/// Shard `index` of `count` of a matrix run's (trace, scenario) units (tools/scale/README.md).
public struct ShardSpec: Codable, Equatable, Sendable {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// `I/N`; `origin` names where the text came from in the error.
    public init(_ text: String, origin: String) throws(ShardError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, n <= 100_000, i >= 0, i < n else {
            throw .malformed(text, origin: origin)
        }
        index = i
        count = n
    }

    /// The units of shard `index`: a contiguous block of the `units` (trace-major) so that a shard decodes
    /// as few traces as possible; blocks differ in size by at most one.
    public func units(of total: Int) -> Range<Int> {
        let lo = total * index / count
        let hi = total * (index + 1) / count
        return lo..<hi
    }

    /// `I/N`, or `auto`: the shard from the scheduler's variables in `environment`, read in this order:
    /// DMATRACE_SHARD=I/N (set from a CI job matrix, e.g. GitHub Actions, which has no built-in job index);
    /// JOB_COMPLETION_INDEX (Kubernetes Indexed Job) with DMATRACE_SHARD_COUNT (the Job's completions);
    /// SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT (Slurm job array; SLURM_ARRAY_TASK_MIN is subtracted).
    public static func parse(_ text: String, environment env: [String: String]) throws(ShardError) -> ShardSpec {
        if text != "auto" { return try ShardSpec(text, origin: "--shard") }
        if let v = env["DMATRACE_SHARD"] { return try ShardSpec(v, origin: "DMATRACE_SHARD") }
        if let i = env["JOB_COMPLETION_INDEX"] {
            guard let n = env["DMATRACE_SHARD_COUNT"] else { throw .kubernetesWithoutCount }
            return try ShardSpec("\(i)/\(n)", origin: "JOB_COMPLETION_INDEX/DMATRACE_SHARD_COUNT")
        }
        if let id = env["SLURM_ARRAY_TASK_ID"], let n = env["SLURM_ARRAY_TASK_COUNT"] {
            guard let idv = Int(id), let minv = Int(env["SLURM_ARRAY_TASK_MIN"] ?? "0") else { throw .slurmNotIntegers }
            return try ShardSpec("\(idv - minv)/\(n)", origin: "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT")
        }
        throw .noSchedulerVariables
    }
}

/// A shard that cannot be told (a usage error of `matrix --shard`, exit 64).
public enum ShardError: Error, Equatable, CustomStringConvertible {
    case malformed(String, origin: String)
    case kubernetesWithoutCount
    case slurmNotIntegers
    case noSchedulerVariables

    public var description: String {
        switch self {
        case let .malformed(text, origin): "\(origin): shard must be I/N with 0 <= I < N <= 100000, got '\(text)'"
        case .kubernetesWithoutCount:
            "JOB_COMPLETION_INDEX is set but DMATRACE_SHARD_COUNT (the Job's completions) is not"
        case .slurmNotIntegers: "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_MIN are not integers"
        case .noSchedulerVariables:
            "--shard auto: none of DMATRACE_SHARD, JOB_COMPLETION_INDEX (+DMATRACE_SHARD_COUNT), SLURM_ARRAY_TASK_ID (+SLURM_ARRAY_TASK_COUNT) is set"
        }
    }
}

/// Which scenarios of which trace to replay.
public struct WorkPlan: Equatable, Sendable {
    /// Per trace index, the scenario indices to replay (empty: skip the trace).
    public var scenarios: [[Int]]

    /// Every (trace, scenario) unit, or the shard's block of them.
    public init(traces: Int, scenarios: Int, shard: ShardSpec?) {
        let units = shard?.units(of: traces * scenarios) ?? 0..<(traces * scenarios)
        var per = [[Int]](repeating: [], count: traces)
        for u in units { per[u / scenarios].append(u % scenarios) }
        self.scenarios = per
    }
}
