import Testing
import Analysis

/// The shard scheduler (moved from the CLI): `I/N`, `auto` from the schedulers' variables, and the work plan.
@Suite struct ShardPlanTests {
    @Test func shardsCoverEveryUnitOnceInContiguousBlocks() throws {
        let shards = try (0..<4).map { try ShardSpec("\($0)/4", origin: "--shard") }
        let blocks = shards.map { $0.units(of: 18) }
        #expect(blocks == [0..<4, 4..<9, 9..<13, 13..<18])
        // 3 traces x 6 scenarios: shard 1 holds trace 0's scenarios 4, 5 and trace 1's 0, 1, 2.
        #expect(WorkPlan(traces: 3, scenarios: 6, shard: shards[1]).scenarios == [[4, 5], [0, 1, 2], []])
        #expect(WorkPlan(traces: 2, scenarios: 2, shard: nil).scenarios == [[0, 1], [0, 1]])
    }

    /// Twin: what is not a shard is refused with the origin named.
    @Test func malformedShardsAreRefused() {
        for bad in ["4/4", "-1/4", "1", "a/b", "0/0", "0/100001"] {
            #expect(throws: ShardError.malformed(bad, origin: "--shard")) { try ShardSpec(bad, origin: "--shard") }
        }
    }

    @Test func autoReadsTheSchedulersVariables() throws {
        #expect(try ShardSpec.parse("auto", environment: ["DMATRACE_SHARD": "0/3"]) == ShardSpec(index: 0, count: 3))
        #expect(
            try ShardSpec.parse("auto", environment: ["JOB_COMPLETION_INDEX": "1", "DMATRACE_SHARD_COUNT": "3"])
                == ShardSpec(index: 1, count: 3))
        #expect(
            try ShardSpec.parse(
                "auto",
                environment: ["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1"])
                == ShardSpec(index: 2, count: 3))
        #expect(try ShardSpec.parse("2/5", environment: ["DMATRACE_SHARD": "0/3"]) == ShardSpec(index: 2, count: 5))
    }

    /// Twin: `auto` without (complete) variables is an error, never shard 0.
    @Test func autoWithoutVariablesIsAnError() {
        #expect(throws: ShardError.noSchedulerVariables) { try ShardSpec.parse("auto", environment: [:]) }
        #expect(throws: ShardError.kubernetesWithoutCount) {
            try ShardSpec.parse("auto", environment: ["JOB_COMPLETION_INDEX": "0"])
        }
        #expect(throws: ShardError.slurmNotIntegers) {
            try ShardSpec.parse("auto", environment: ["SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "3"])
        }
    }
}
