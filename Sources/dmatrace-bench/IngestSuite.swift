import Foundation
import TraceFormat
import TraceIngest

extension BenchSuite {
    /// ftrace text ingest on a generated file of ≥ 1 GB, next to `wc -l` and the Python regex parser a user
    /// would otherwise write (tools/bench/ftrace_regex.py), on the same file in one run.
    static let ingest = BenchSuite(
        name: "ingest",
        summary:
            "ftrace text ingest (parse only, and parse + write .dmat) vs wc -l and a Python regex parser on a >= 1 GB file",
        run: { o in
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().path
            let path = (o.directory as NSString).appendingPathComponent("dmatrace-bench-ftrace-\(o.bytes).txt")
            let out = (o.directory as NSString).appendingPathComponent("dmatrace-bench-ingest.dmat")
            defer {
                try? FileManager.default.removeItem(atPath: out)
                if !o.keep { try? FileManager.default.removeItem(atPath: path) }
            }
            let size = { (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0 }
            if size() < o.bytes {
                print("generating \(path) with tools/bench/gen_ftrace.py ...")
                guard let python = Bench.which("python3") else { throw BenchError("python3 not found") }
                try Bench.runDiscardingOutput(python, [root + "/tools/bench/gen_ftrace.py", path, String(o.bytes)])
            }
            let bytes = Double(size())

            // Parse only: the importer into the sink of `ingest --dry-run` (encodes each record, writes nothing).
            var events: UInt64 = 0
            let parse = try Bench.measure(runs: o.runs) {
                var sink = CountingSink()
                var importer = FtraceTextImporter()
                var d = IngestDiagnostics()
                try importer.run(try IngestInput.open(path), source: 0, clock: 0, into: &sink, diagnostics: &d)
                events = sink.count
            }
            // Parse + write the .dmat (what `dmatrace ingest FILE -o OUT` does).
            let write = try Bench.measure(runs: o.runs) {
                let pipeline = IngestPipeline()
                let plan = try pipeline.plan([try IngestInput.open(path)])
                var writer = try TraceWriter(path: out)
                _ = try pipeline.run(plan, into: &writer)
                try writer.finish()
            }
            guard let wc = Bench.which("wc") else { throw BenchError("wc not found") }
            let wcT = try Bench.measure(runs: o.runs, children: true) {
                try Bench.runDiscardingOutput(wc, ["-l", path])
            }
            let skipPython = ProcessInfo.processInfo.environment["SKIP_PYTHON"] == "1"
            let n = Double(events)
            print("file: \(Int(bytes)) bytes, \(events) events; \(ProcessInfo.processInfo.activeProcessorCount) cores")
            func line(_ label: String, _ t: Bench.Timings, events: Bool = true) {
                let w = t.wall.isEmpty ? 0 : Bench.median(t.wall)
                let c = t.cpu.isEmpty ? 0 : Bench.median(t.cpu)
                print(
                    "\(label) wall \(Bench.fmt(w, 3)) s = \(Bench.fmt(bytes / w / 1e6, 0)) MB/s"
                        + (events ? ", \(Bench.millions(n / w)) events/s" : "")
                        + "; CPU \(Bench.fmt(c, 3)) s = \(Bench.fmt(bytes / c / 1e6, 0)) MB/s per core")
            }
            line("dmatrace ftrace parse only:     ", parse)
            line("dmatrace ingest -> .dmat:       ", write)
            line("wc -l:                          ", wcT, events: false)
            if !skipPython {
                // One run: the Python parser takes minutes on 1 GB.
                guard let contender = Bench.contenderPython() else { throw BenchError("python3 not found") }
                let clock = ContinuousClock()
                let c0 = Bench.cpuSeconds(children: true)
                let d = try clock.measure {
                    try Bench.runDiscardingOutput(contender, [root + "/tools/bench/ftrace_regex.py", path])
                }
                let w = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
                line(
                    "\(contender) ftrace_regex.py (1 run):",
                    Bench.Timings(wall: [w], cpu: [Bench.cpuSeconds(children: true) - c0]))
                print(
                    "speed-up over Python: \(Bench.fmt(w / Bench.median(parse.wall), 1))x parse only, "
                        + "\(Bench.fmt(w / Bench.median(write.wall), 1))x with .dmat writing (goal >= 20x)")
            }
            var u = rusage()
            _ = getrusage(RUSAGE_SELF.rawValue, &u)
            print("peak RSS of dmatrace-bench: \(u.ru_maxrss / 1024) MB")
        })
}
