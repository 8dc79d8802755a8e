import Foundation
import TraceFormat

extension BenchSuite {
    /// Full decode + checksum (what `dmatrace verify` does) against `zstd -d -c FILE > /dev/null`.
    static let decode = BenchSuite(
        name: "decode",
        summary: "write a synthetic trace, then time a full decode+checksum against zstd -d -c on the same file",
        run: { o in
            let path = (o.directory as NSString).appendingPathComponent("dmatrace-bench-decode-\(o.events).dmat")
            defer { if !o.keep { try? FileManager.default.removeItem(atPath: path) } }
            let clock = ContinuousClock()
            let writeTime = try clock.measure { try SyntheticTrace.write(events: o.events, to: path) }
            let bytes = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.doubleValue ?? 0
            let n = Double(o.events)
            let w = Double(writeTime.components.seconds) + Double(writeTime.components.attoseconds) / 1e18
            print(
                "trace: \(o.events) events, \(Int(bytes)) bytes, \(Bench.fmt(bytes / n, 2)) bytes/event, "
                    + "compression ratio \(Bench.fmt(n * 56 / bytes, 2)) (written in \(Bench.fmt(w, 2)) s, \(Bench.millions(n / w)) events/s)"
            )

            var checked: UInt64 = 0
            func verify(threads: Int) throws {
                let r = try TraceReader(path: path)
                r.decodeThreads = threads
                guard try r.verify() else { throw BenchError("synthetic trace damaged: \(r.damage)") }
                checked = r.eventCount
            }
            guard let zstd = Bench.which("zstd") else {
                throw BenchError("zstd CLI not found (tools/setup installs it)")
            }
            // The dmatrace binary next to this one (same build), run exactly like zstd: as a subprocess.
            let cli = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
                .deletingLastPathComponent().appendingPathComponent("dmatrace").path
            let haveCLI = FileManager.default.isExecutableFile(atPath: cli)
            var contenders: [(children: Bool, body: () throws -> Void)] = [
                (false, { try verify(threads: 1) }),
                (false, { try verify(threads: 2) }),
                (true, { try Bench.runDiscardingOutput(zstd, ["-d", "-c", "-q", path]) })
            ]
            if haveCLI { contenders.append((true, { try Bench.runDiscardingOutput(cli, ["verify", "-q", path]) })) }
            let t = try Bench.interleaved(runs: o.runs, contenders)
            guard checked == UInt64(o.events) else { throw BenchError("decoded \(checked) events, wrote \(o.events)") }
            let (single, ours, theirs) = (t[0], t[1], t[2])
            func line(_ label: String, _ t: Bench.Timings) -> String {
                "\(label) wall median \(Bench.fmt(Bench.median(t.wall), 3)) s (best \(Bench.fmt(t.wall[0], 3))) = "
                    + "\(Bench.millions(n / Bench.median(t.wall))) events/s (best \(Bench.millions(n / t.wall[0]))); "
                    + "CPU median \(Bench.fmt(Bench.median(t.cpu), 3)) s = \(Bench.millions(n / Bench.median(t.cpu))) events/s per core"
            }
            print(line("dmatrace verify, 1 thread:        ", single))
            print(line("dmatrace verify, 2 threads:       ", ours))
            print(line("zstd -d -c FILE > /dev/null:      ", theirs))
            if haveCLI {
                print(line("dmatrace verify FILE (subprocess):", t[3]))
                print(
                    "ratio dmatrace verify (subprocess)/zstd events/s: wall median \(Bench.fmt(Bench.median(theirs.wall) / Bench.median(t[3].wall), 2)), "
                        + "CPU median \(Bench.fmt(Bench.median(theirs.cpu) / Bench.median(t[3].cpu), 2))")
            } else {
                print("(build the release dmatrace too to time `dmatrace verify` as a subprocess)")
            }
            print(
                "ratio dmatrace/zstd events/s: wall median \(Bench.fmt(Bench.median(theirs.wall) / Bench.median(ours.wall), 2)), "
                    + "wall best \(Bench.fmt(theirs.wall[0] / ours.wall[0], 2)), CPU median \(Bench.fmt(Bench.median(theirs.cpu) / Bench.median(ours.cpu), 2)) (goal >= 0.9)"
            )
        })
}

/// A realistic synthetic trace: four virtio devices mapping and unmapping buffers through a Linux-like
/// IOVA allocator (freed IOVAs are reused first), with syncs and monotonic timestamps.
enum SyntheticTrace {
    static func write(events: Int, to path: String) throws {
        var meta = TraceMetadata()
        meta.capture.kernelRelease = "6.12.0-synthetic"
        meta.capture.viommu = "intel-iommu"
        meta.clocks = [ClockDomain(id: 0, name: "guest-boot")]
        meta.inputs = [InputFile(path: "synthetic", format: "bench", positionUnit: .line)]
        let w = try TraceWriter(path: path, metadata: meta, options: .init(workers: 2))
        let devices = (0..<4).map {
            w.device(DeviceInfo(name: "0000:00:0\($0 + 2).0", virtioType: $0 % 2 == 0 ? "net" : "block"))
        }
        var seed: UInt64 = 0x2545_F491_4F6C_DD1D
        func next() -> UInt64 {  // xorshift: fast and deterministic
            seed ^= seed << 13
            seed ^= seed >> 7
            seed ^= seed << 17
            return seed
        }
        var freeIOVAs: [[UInt64]] = Array(repeating: [], count: 4)
        var nextIOVA: [UInt64] = Array(repeating: 0xffff_f000, count: 4)
        var live: [[(iova: UInt64, phys: UInt64, size: UInt64, dir: DMADirection)]] = Array(repeating: [], count: 4)
        var ts: UInt64 = 1_000_000_000
        var line: UInt64 = 1
        var written = 0
        let sizes: [UInt64] = [1514, 4096, 4096, 512, 65536, 1514, 256, 4096]
        while written < events {
            ts += 200 + next() % 2000
            line += 1
            let d = Int(next() % 4)
            let r = next() % 16
            if live[d].count > 0 && (r < 7 || live[d].count > 256) {
                let k = Int(next() % UInt64(live[d].count))
                live[d].swapAt(k, live[d].count - 1)
                let m = live[d].removeLast()
                try w.append(
                    Event(
                        kind: .dmaUnmap, timestamp: ts, device: devices[d], direction: m.dir,
                        detail: MapAPI.page.rawValue,
                        address: m.iova, size: m.size, source: 0, position: line))
                freeIOVAs[d].append(m.iova)
            } else if r == 15 && !live[d].isEmpty {
                let m = live[d][Int(next() % UInt64(live[d].count))]
                try w.append(
                    Event(
                        kind: .dmaSync, timestamp: ts, device: devices[d], direction: m.dir,
                        detail: SyncTarget.forCPU.rawValue, address: m.iova, size: m.size, source: 0, position: line))
            } else {
                let size = sizes[Int(next() % UInt64(sizes.count))]
                let iova: UInt64
                if let reused = freeIOVAs[d].popLast() {
                    iova = reused
                } else {
                    nextIOVA[d] -= 0x10000
                    iova = nextIOVA[d] + 0x10000 * UInt64(d) * 0x100
                }
                let phys = 0x1_0000_0000 + (next() % 0x40000) << 12 + UInt64(next() % 64) * 64
                let dir: DMADirection = d % 2 == 0 ? (r % 2 == 0 ? .toDevice : .fromDevice) : .bidirectional
                live[d].append((iova, phys, size, dir))
                try w.append(
                    Event(
                        kind: .dmaMap, timestamp: ts, device: devices[d], direction: dir, detail: MapAPI.page.rawValue,
                        address: iova, address2: phys, size: size, source: 0, position: line))
            }
            written += 1
        }
        try w.finish()
    }
}
