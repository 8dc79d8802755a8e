import Foundation
import Testing
import DMATraceTestSupport

/// `matrix --shard I/N` in separate processes, recombined by `merge`, against the unsharded run (tools/scale/README.md).
@Suite(.tags(.subprocess), .serialized) struct ShardMergeTests {
    static let kernels = "linux-4.0-bypass,linux-6.1"
    static let modes = "qemu-noiommu,qemu-viommu-virtio-bypass,qemu-viommu-virtio-translated"

    /// Three small synthetic traces (different seeds, bugs, one without host translations).
    static func traces(in dir: String) throws -> [String] {
        let specs: [[String]] = [
            ["--seed", "1", "--bug", "use-after-unmap", "--bug-every", "300"],
            ["--seed", "2", "--no-host", "--net", "2"],
            ["--seed", "3", "--bug", "double-unmap", "--bug", "stray-dma", "--bug-every", "200"]
        ]
        return try specs.enumerated().map { i, extra in
            let path = "\(dir)/t\(i).dmat"
            let r = try CLI.run(["synth", "-o", path, "--events", "6000", "--chunk-events", "1000"] + extra)
            try #require(r.status == 0, "synth: \(r.stderr)")
            return path
        }
    }

    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// Runs `dmatrace args` with extra environment variables; returns the exit status and standard error.
    static func run(_ args: [String], env: [String: String]) throws -> (Int32, String) {
        var environment: [String: String?] = [:]
        for k in [
            "DMATRACE_SHARD", "JOB_COMPLETION_INDEX", "DMATRACE_SHARD_COUNT", "SLURM_ARRAY_TASK_ID",
            "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN"
        ] {
            environment[k] = .some(nil)
        }
        for (k, v) in env { environment[k] = v }
        let r = try Subprocess.run(CLI.binary, args, environment: environment)
        return (r.status, r.stderr)
    }

    @Test func fourShardsMergeByteIdenticalToTheUnshardedRun() throws {
        let dir = try CLI.temporaryDirectory("shard")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let traces = try Self.traces(in: dir)
        let common = ["matrix"] + traces + ["--kernels", Self.kernels, "--modes", Self.modes]

        let full = try CLI.run(common + ["--format", "json", "--threads", "1", "-o", "\(dir)/full.json"])
        #expect(full.status == 0, "\(full.stderr)")
        let parallel = try CLI.run(common + ["--format", "json", "--threads", "2", "-o", "\(dir)/full2.json"])
        #expect(parallel.status == 0)
        #expect(try Self.bytes("\(dir)/full.json") == Self.bytes("\(dir)/full2.json"))

        // Four shards as four concurrent processes.
        let pids = try (0..<4).map { i in try CLI.spawn(common + ["--shard", "\(i)/4", "-o", "\(dir)/part\(i).json"]) }
        #expect(pids.map { CLI.wait($0) } == [0, 0, 0, 0])

        // 3 traces x 2 kernels x 3 modes = 18 units; shard 0 holds units 0..<4 (trace 0, scenarios 0...3),
        // shard 1 units 4..<9 (trace 0: 4, 5; trace 1: 0, 1, 2).
        let p0 = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/part0.json")))
                as? [String: Any])
        let pieces0 = try #require(p0["pieces"] as? [[String: Any]])
        #expect(pieces0.count == 1)
        #expect(pieces0.first?["scenarios"] as? [Int] == [0, 1, 2, 3])
        let p1 = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/part1.json")))
                as? [String: Any])
        let pieces1 = try #require(p1["pieces"] as? [[String: Any]])
        #expect(pieces1.map { $0["trace"] as? Int } == [0, 1])
        #expect(pieces1.map { $0["scenarios"] as? [Int] } == [[4, 5], [0, 1, 2]])

        let merged = try CLI.run([
            "merge", "\(dir)/part3.json", "\(dir)/part1.json", "\(dir)/part0.json", "\(dir)/part2.json",
            "-o", "\(dir)/merged.json"
        ])
        #expect(merged.status == 0, "\(merged.stderr)")
        let a = try Self.bytes("\(dir)/full.json"), b = try Self.bytes("\(dir)/merged.json")
        #expect(a.count > 1000)
        #expect(a == b)

        // Other renderers go through the same report.
        _ = try CLI.run(common + ["--format", "markdown", "-o", "\(dir)/full.md"])
        _ = try CLI.run(
            ["merge", "--format", "markdown", "-o", "\(dir)/merged.md"] + (0..<4).map { "\(dir)/part\($0).json" })
        #expect(try Self.bytes("\(dir)/full.md") == Self.bytes("\(dir)/merged.md"))

        // A missing or doubled shard is an input error.
        let missing = try CLI.run(["merge", "\(dir)/part0.json", "\(dir)/part1.json", "\(dir)/part3.json"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("shard(s) 2 of 4 missing"))
        let twice = try CLI.run(["merge", "\(dir)/part0.json", "\(dir)/part0.json"])
        #expect(twice.status == 2)
        #expect(twice.stderr.contains("given twice"))
    }

    @Test func shardAutoReadsSchedulerVariables() throws {
        let dir = try CLI.temporaryDirectory("shard-env")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let traces = try Self.traces(in: dir)
        let common = ["matrix"] + traces + ["--kernels", Self.kernels, "--modes", Self.modes, "--shard", "auto"]
        let envs: [[String: String]] = [
            ["DMATRACE_SHARD": "0/3"],  // GitHub Actions matrix (user-set)
            ["JOB_COMPLETION_INDEX": "1", "DMATRACE_SHARD_COUNT": "3"],  // Kubernetes Indexed Job
            // sbatch --array=1-3
            ["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1"]
        ]
        for (i, env) in envs.enumerated() {
            let (status, err) = try Self.run(common + ["-o", "\(dir)/part\(i).json"], env: env)
            #expect(status == 0, "\(err)")
        }
        let (noEnv, err) = try Self.run(common, env: [:])
        #expect(noEnv == 64)
        #expect(err.contains("none of DMATRACE_SHARD"))
        let (k8sNoCount, _) = try Self.run(common, env: ["JOB_COMPLETION_INDEX": "0"])
        #expect(k8sNoCount == 64)
        #expect(try CLI.run(common.dropLast(2) + ["--shard", "4/4"]).status == 64)

        #expect(
            try CLI.run(["merge", "-o", "\(dir)/merged.json"] + (0..<3).map { "\(dir)/part\($0).json" }).status == 0)
        #expect(try CLI.run(Array(common.dropLast(2)) + ["--format", "json", "-o", "\(dir)/full.json"]).status == 0)
        #expect(try Self.bytes("\(dir)/full.json") == Self.bytes("\(dir)/merged.json"))
    }
}
