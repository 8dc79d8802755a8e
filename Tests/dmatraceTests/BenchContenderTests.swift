import DMATraceTestSupport
import Foundation
import Testing

/// The benchmark's Python contender (tools/bench/ftrace_regex.py) must count the same events as
/// `dmatrace ingest`, or the ingest ratio compares different work.
@Suite(.tags(.subprocess)) struct BenchContenderTests {
    static let python: String? = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }
    static let file = CorpusTests.root.appendingPathComponent("Tests/Fixtures/synthetic/bench-contender-kinds.txt").path

    /// `dmatrace ingest --dry-run` per-event counts ("  NAME: N" lines, unknown events excluded).
    static func dmatraceCounts(_ path: String) throws -> [String: Int] {
        let r = try CorpusTests.run(try ReplayCommandTests.dmatrace(), ["ingest", "--dry-run", path])
        #expect(r.status == 0, "\(r.err)")
        var counts: [String: Int] = [:]
        for line in r.err.split(separator: "\n") where line.hasPrefix("  ") && !line.contains("(") {
            let parts = line.trimmingCharacters(in: .whitespaces).split(separator: ":")
            if parts.count == 2, let n = Int(parts[1].trimmingCharacters(in: .whitespaces)) {
                counts[String(parts[0])] = n
            }
        }
        return counts
    }

    /// The contender's counts, from its last line `N events U unknown {'name': n, ...}`.
    static func contenderCounts(_ path: String) throws -> (total: Int, counts: [String: Int]) {
        let r = try CorpusTests.run(
            try #require(python), [CorpusTests.root.path + "/tools/bench/ftrace_regex.py", path])
        #expect(r.status == 0, "\(r.err)")
        let line = try #require(r.out.split(separator: "\n").last.map(String.init))
        var counts: [String: Int] = [:]
        let dict = line.drop { $0 != "{" }.dropFirst().dropLast()
        for item in dict.split(separator: ",") {
            let kv = item.split(separator: ":")
            if kv.count == 2 {
                counts[
                    kv[0].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "'"))] =
                    Int(kv[1].trimmingCharacters(in: .whitespaces))
            }
        }
        return (Int(line.prefix { $0 != " " }) ?? -1, counts)
    }

    @Test(.enabled(if: python != nil, "needs python3"))
    func contenderCountsWhatIngestCounts() throws {
        let ours = try Self.dmatraceCounts(Self.file)
        let theirs = try Self.contenderCounts(Self.file)
        #expect(ours.count == 8, "every kind of the fixture is understood: \(ours)")
        #expect(ours == theirs.counts)
        #expect(theirs.total == 8, "one per event line; the malformed and unknown lines are not counted")
    }

    /// Twin: a contender that skipped a kind (the old script had no dma_free) is caught by the same check.
    @Test(.enabled(if: python != nil, "needs python3"))
    func aContenderMissingAKindIsCaught() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "dmatrace-contender-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = try String(contentsOfFile: CorpusTests.root.path + "/tools/bench/ftrace_regex.py", encoding: .utf8)
        let broken = script.replacingOccurrences(
            of: "    \"dma_free\": re.compile(", with: "    \"dma_free_x\": re.compile(")
        #expect(broken != script)
        try broken.write(to: dir.appendingPathComponent("ftrace_regex.py"), atomically: true, encoding: .utf8)
        let r = try CorpusTests.run(
            try #require(Self.python), [dir.appendingPathComponent("ftrace_regex.py").path, Self.file])
        #expect(!r.out.contains("'dma_free'"))
        #expect(try Self.dmatraceCounts(Self.file)["dma_free"] == 1)
    }
}
