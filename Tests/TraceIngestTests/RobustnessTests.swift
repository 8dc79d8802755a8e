import Testing
import TraceFormat
@testable import TraceIngest

/// Cut and mutated lines of every fixture through both text importers: they must report, never trap.
@Suite struct RobustnessTests {
    private static func lines(_ relative: String) throws -> [[UInt8]] {
        try IngestInput.open(Fixtures.path(relative)).readAll().split(separator: 0x0A, omittingEmptySubsequences: false)
            .map(Array.init)
    }

    private static let samples = [
        "synthetic/ftrace-dma-virtio-linux6.15-synthetic.txt", "\(Fixtures.strict)/guest-trace-cmd-v6-report.txt",
        "synthetic/dmesg-variants/intel-dmar-linux4.19-synthetic.txt",
        "synthetic/dmesg-variants/amd-vi-variants-synthetic.txt",
        "synthetic/dmesg-variants/arm-smmu-v3-synthetic.txt", "synthetic/dmesg-variants/dma-api-debug-synthetic.txt",
        "real/dmesg-linux6.1-intel-viommu-dmar-faults-real.txt"
    ]

    private func feed(_ text: [UInt8]) {
        let input = IngestInput(path: "fuzz.txt", bytes: text)
        var f = FtraceTextImporter()
        var d = DmesgImporter()
        var b1 = EventBuffer()
        var b2 = EventBuffer()
        var g1 = IngestDiagnostics()
        var g2 = IngestDiagnostics()
        _ = try? f.run(input, source: 0, clock: 0, into: &b1, diagnostics: &g1)
        _ = try? d.run(input, source: 0, clock: 0, into: &b2, diagnostics: &g2)
    }

    @Test func everyPrefixOfEveryLine() throws {
        var cut: [UInt8] = []
        for s in Self.samples {
            for line in try Self.lines(s).prefix(20) {
                for n in 0...line.count { cut += line[..<n]; cut.append(0x0A) }
            }
        }
        feed(cut)
    }

    @Test func randomMutations() throws {
        var rng = SplitMix64(seed: 0x5EED)
        let alphabet = Array("0123456789abcdefx:[]{}=,. -|/\t\u{0}\u{ff}".utf8)
        var out: [UInt8] = []
        for s in Self.samples {
            for line in try Self.lines(s).prefix(30) where !line.isEmpty {
                for _ in 0..<20 {
                    var l = line
                    for _ in 0..<(1 + Int(rng.next() % 4)) {
                        let at = Int(rng.next() % UInt64(l.count))
                        switch rng.next() % 3 {
                        case 0: l[at] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                        case 1: l.remove(at: at)
                        default: l.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: at)
                        }
                        if l.isEmpty { break }
                    }
                    out += l
                    out.append(0x0A)
                }
            }
        }
        feed(out)
    }
}
