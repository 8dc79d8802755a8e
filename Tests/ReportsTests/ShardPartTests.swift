import Analysis
import Testing
import Reports

/// The shard part format and its merge (moved from the CLI's `merge`).
@Suite struct ShardPartTests {
    static func part(_ i: Int, of n: Int, traces: [String] = []) -> ShardPart {
        ShardPart(
            shard: ShardSpec(index: i, count: n), command: "matrix", traces: traces, scenarios: ["k@m"], axis: nil,
            pieces: [])
    }

    @Test func everyShardOnceMerges() throws {
        let (command, results) = try ShardPart.merge([("b", Self.part(1, of: 2)), ("a", Self.part(0, of: 2))])
        #expect(command == "matrix")
        #expect(results.isEmpty)
        #expect(try Self.part(0, of: 1).json().hasPrefix("{\n  \"command\" : \"matrix\""))
    }

    /// Twin: a missing, doubled or foreign part is refused.
    @Test func missingDoubledOrForeignPartsAreRefused() {
        #expect(throws: MergeError.missingShards([1], of: 2)) { try ShardPart.merge([("a", Self.part(0, of: 2))]) }
        #expect(throws: MergeError.mismatch(file: "b", what: "shard 0/2 given twice (also a)")) {
            try ShardPart.merge([("a", Self.part(0, of: 2)), ("b", Self.part(0, of: 2))])
        }
        #expect(throws: MergeError.self) {
            try ShardPart.merge([("a", Self.part(0, of: 2)), ("b", Self.part(1, of: 2, traces: ["t"]))])
        }
        // A part whose units are not its shard's (trace t has one unit, shard 0/1 must hold it).
        #expect(throws: MergeError.mismatch(file: "a", what: "its units are not those of shard 0/1")) {
            try ShardPart.merge([("a", Self.part(0, of: 1, traces: ["t"]))])
        }
    }
}
