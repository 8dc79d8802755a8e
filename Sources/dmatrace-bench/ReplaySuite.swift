import Foundation
import Models
import Replay
import TraceFormat
import TraceIngest

extension BenchSuite {
    /// Replay throughput with 1 and 8 scenarios on the synthetic workload, next to `zstd -d` on the same file,
    /// and the peak RSS of `dmatrace replay` at two trace lengths with the same live set.
    static let replay = BenchSuite(
        name: "replay",
        summary:
            "replay a synthetic workload under 1, 8 and all built-in scenarios (one decode pass) against zstd -d; peak RSS at N and N/10 events",
        run: { o in
            let catalog = try ModelCatalog.builtin()
            let one = ["linux-6.1@qemu-viommu-virtio-translated"]
            let eight =
                one + [
                    "linux-6.1+lazy@qemu-viommu-virtio-translated", "linux-4.0-bypass@qemu-viommu-virtio-bypass",
                    "linux-4.8-platform@qemu-viommu-virtio-translated",
                    "dma-api-without-bit33@qemu-viommu-virtio-bypass",
                    "linux-restricted-memory@qemu-cc-no-viommu", "linux-6.1@qemu-smmuv3", "rhel7-backport@qemu-noiommu"
                ]
            func path(_ n: Int) -> String {
                (o.directory as NSString).appendingPathComponent("dmatrace-bench-replay-\(n).dmat")
            }
            func generate(_ n: Int) throws -> Double {
                let w = try TraceWriter(path: path(n), options: .init(workers: 2))
                var sink = w
                _ = try SyntheticWorkload(options: .init(events: n, seed: 11, hostTranslations: true)).generate(
                    into: &sink)
                try w.finish()
                return (try FileManager.default.attributesOfItem(atPath: path(n))[.size] as? NSNumber)?.doubleValue ?? 0
            }
            let n = o.events
            let bytes = try generate(n)
            defer { if !o.keep { try? FileManager.default.removeItem(atPath: path(n)) } }
            print(
                "trace: \(n) events, \(Int(bytes)) bytes (SyntheticWorkload: 2 virtio-blk + 1 virtio-net, dma:* + vtd translations)"
            )
            let nd = Double(n)
            func run(_ ids: [String], deduplicate: Bool = true) throws -> Bench.Timings {
                let scenarios = try ids.map { try Scenario.parse($0, catalog: catalog) }
                var options = ReplayOptions()
                options.deduplicate = deduplicate
                return try Bench.measure(runs: o.runs) {
                    let r = try TraceReader(path: path(n))
                    let rec = try? RecordedScenario.infer(metadata: r.metadata, catalog: catalog).get()
                    let result = try ReplayEngine(scenarios: scenarios, recorded: rec, options: options).run(
                        r, tracePath: path(n))
                    guard result.events >= n else { throw BenchError("replayed \(result.events) of \(n) events") }
                }
            }
            let t1 = try run(one)
            let t8 = try run(eight)
            // The full built-in matrix: every kernel × every mode.
            let all = catalog.kernelIDs.flatMap { k in catalog.modeIDs.map { "\(k)@\($0)" } }
            let tm = try run(all)
            // The same without deduplication (every scenario simulated): what the classes save.
            let tx = try run(all, deduplicate: false)
            guard let zstd = Bench.which("zstd") else { throw BenchError("zstd CLI not found") }
            let tz = try Bench.measure(runs: o.runs, children: true) {
                try Bench.runDiscardingOutput(zstd, ["-d", "-c", "-q", path(n)])
            }
            func line(_ label: String, _ t: Bench.Timings) -> String {
                "\(label) wall median \(Bench.fmt(Bench.median(t.wall), 3)) s (best \(Bench.fmt(t.wall[0], 3))) = \(Bench.millions(nd / Bench.median(t.wall))) events/s; "
                    + "CPU median \(Bench.fmt(Bench.median(t.cpu), 3)) s = \(Bench.millions(nd / Bench.median(t.cpu))) events/s per core"
            }
            print(line("replay, 1 scenario: ", t1))
            print(line("replay, 8 scenarios:", t8))
            print(line("replay, \(all.count) (matrix):", tm))
            print(line("same, each simulated:", tx))
            print(line("zstd -d -c > null:  ", tz))
            print(
                "1 scenario / zstd events/s: wall \(Bench.fmt(Bench.median(tz.wall) / Bench.median(t1.wall), 2)), "
                    + "CPU \(Bench.fmt(Bench.median(tz.cpu) / Bench.median(t1.cpu), 2)) (goal >= 0.9: \(Bench.median(tz.wall) / Bench.median(t1.wall) >= 0.9 ? "met" : "not met")); "
                    + "8 scenarios / 1 scenario time: wall \(Bench.fmt(Bench.median(t8.wall) / Bench.median(t1.wall), 2)), "
                    + "CPU \(Bench.fmt(Bench.median(t8.cpu) / Bench.median(t1.cpu), 2)) (goal <= 2: \(Bench.median(t8.wall) / Bench.median(t1.wall) <= 2 ? "met" : "not met")); "
                    + "full matrix (\(all.count) scenarios) / 1 scenario time: wall \(Bench.fmt(Bench.median(tm.wall) / Bench.median(t1.wall), 2)), "
                    + "CPU \(Bench.fmt(Bench.median(tm.cpu) / Bench.median(t1.cpu), 2)) (goal <= 4: \(Bench.median(tm.wall) / Bench.median(t1.wall) <= 4 ? "met" : "not met"))"
            )

            // Peak RSS of the CLI at n/10 and n events (same generator, same live set).
            let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
                "dmatrace"
            ).path
            guard FileManager.default.isExecutableFile(atPath: exe) else {
                print("peak RSS: skipped (\(exe) not built; swift build -c release)")
                return
            }
            let small = max(1, n / 10)
            _ = try generate(small)
            defer { if !o.keep { try? FileManager.default.removeItem(atPath: path(small)) } }
            func peakRSS(_ events: Int) throws -> Double {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: exe)
                p.arguments = ["replay", path(events), "--scenario", one[0]]
                try OutputSink.guarded("dmatrace replay") { fd in
                    p.standardOutput = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
                    try p.run()
                    p.waitUntilExit()
                }
                var u = rusage()
                _ = getrusage(RUSAGE_CHILDREN.rawValue, &u)
                return Double(u.ru_maxrss) / 1024  // MiB (ru_maxrss is KiB on Linux; max over children so far)
            }
            let rssSmall = try peakRSS(small)
            let rssLarge = try peakRSS(n)
            print(
                "peak RSS of dmatrace replay: \(small) events \(Bench.fmt(rssSmall)) MiB, \(n) events \(Bench.fmt(rssLarge)) MiB, "
                    + "ratio \(Bench.fmt(rssLarge / rssSmall, 2)) (goal <= 1.1)")
        })
}
