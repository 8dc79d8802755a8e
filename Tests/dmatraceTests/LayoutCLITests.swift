import DMATraceTestSupport
import Foundation
import Testing
import TraceFormat

/// `--layout` on the commands that write traces: both layouts hold the same events; rows is the default.
@Suite(.tags(.subprocess)) struct LayoutCLITests {
    @Test func synthAndIngestWriteEitherLayout() throws {
        let dir = try CLI.temporaryDirectory("layout")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var events: [String: [Event]] = [:]
        for (name, extra) in [
            ("default", [String]()), ("rows", ["--layout", "rows"]), ("compact", ["--layout", "compact"])
        ] {
            let path = dir + "/\(name).dmat"
            let r = try CLI.run(
                ["synth", "-o", path, "--events", "3000", "--chunk-events", "1000", "--seed", "4"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            let reader = try TraceReader(path: path)
            let compact = name == "compact"
            #expect(reader.header.major == (compact ? 2 : 1))
            #expect(reader.chunks.allSatisfy { $0.header.layout == (compact ? .compact : .rows) })
            events[name] = try reader.load().events
            let info = try CLI.runCapturing(["info", path])
            #expect(
                info.stdout.contains(
                    compact ? "dmat 2.0, 56-byte records, compact layout" : "dmat 1.0, 56-byte records, rows layout"))
        }
        // synth prints how many events it wrote (3000 asked for, plus the rings' allocations).
        let written = try CLI.run([
            "synth", "-o", dir + "/count.dmat", "--events", "3000", "--chunk-events", "1000", "--seed", "4"
        ])
        let said = written.stderr.split(separator: " ").firstIndex(of: "events,").map {
            written.stderr.split(separator: " ")[$0 - 1]
        }
        let count = try #require(said.flatMap { Int($0) }, "\(written.stderr)")
        #expect(count >= 3000 && count < 3100)
        #expect(events["compact"]?.count == count)
        #expect(events["compact"] == events["rows"])
        #expect(events["default"] == events["rows"])
        // ingest of the compact trace's JSONL in the compact layout gives the same events again.
        let jsonl = try CLI.runCapturing(["cat", "--jsonl", dir + "/compact.dmat"])
        try jsonl.stdout.write(toFile: dir + "/t.jsonl", atomically: true, encoding: .utf8)
        let r = try CLI.run(["ingest", "--quiet", "--layout", "compact", dir + "/t.jsonl", "-o", dir + "/again.dmat"])
        #expect(r.status == 0, "\(r.stderr)")
        let again = try TraceReader(path: dir + "/again.dmat")
        #expect(again.header.major == 3)  // JSONL may carry `on_cpu`, so its ingest declares 3.0
        // Ingest records its own provenance (source, position); everything else is the same.
        func core(_ e: [Event]) -> [String] {
            e.map { "\($0.kind) \($0.timestamp) \($0.address) \($0.address2) \($0.size) \($0.flags) \($0.device)" }
        }
        #expect(core(try again.load().events) == core(events["rows"] ?? []))
        let bad = try CLI.run(["synth", "-o", dir + "/x.dmat", "--layout", "columns"])
        #expect(bad.status == 64)
    }
}
