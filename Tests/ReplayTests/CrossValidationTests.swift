import Foundation
import Models
import Testing
import TraceFormat
@testable import Replay
import DMATraceTestSupport

/// Event-level cross-validation of the bundled real captures (`dmatrace validate traces/*.dmat`, docs/replay.md):
/// the tables in traces/README.md are the measured ones, and the comparison sees a wrong recording.
@Suite(.tags(.realCapture)) struct CrossValidationTests {
    static let catalog: ModelCatalog = try! ModelCatalog.builtin()

    /// The Linux 6.1 / QEMU 7.2 captures of `traces/` and their second boots (`NAME-boot2`), named by file; the
    /// captures of other versions (`linux*-`, `qemu*-`) are not in the table (traces/README.md).
    static func captures() throws -> [CrossValidation.Capture] {
        let dir = Repository.root.appendingPathComponent("traces")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            .filter { $0.hasSuffix(".dmat") && !$0.hasPrefix("linux") && !$0.hasPrefix("qemu") }.sorted()
        return try files.map { f in
            let reader = try TraceReader(path: dir.appendingPathComponent(f).path)
            var b = EventBuffer(metadata: reader.metadata)
            try reader.forEachEvent { _, e in b.append(e) }
            return CrossValidation.Capture(name: String(f.dropLast(5)), trace: b)
        }
    }

    @Test func readmeHoldsTheMeasuredTables() throws {
        let caps = try Self.captures()
        #expect(caps.count >= 6)
        let result = try CrossValidation.run(caps, catalog: Self.catalog)
        #expect(result.pairs.count == caps.count * caps.count)
        let text = CrossValidation.markdown(result)
        let readme = try String(contentsOf: Repository.root.appendingPathComponent("traces/README.md"), encoding: .utf8)
        #expect(
            readme.contains(text), "regenerate with: dmatrace validate $(ls traces/*.dmat | grep -v -e /linux -e /qemu)"
        )
        // Second boots give the noise floor, and intel-strict's is predicted within it.
        #expect(result.spreads.count == caps.filter { $0.name.hasSuffix("-boot2") }.count)
        if let spread = result.spreads.first(where: { $0.config == "intel-strict" }),
            let pair = result.pairs.first(where: { $0.a == "intel-strict-boot2" && $0.b == "intel-strict" })
        {
            for (m, sp) in zip(pair.metrics, spread.metrics) where m.name != "invalidations" {
                #expect(m.error <= sp.error, "\(m.name)")
            }
        }
        // A capture replayed under its own scenario reproduces its own counts of maps, unmaps and translations.
        for p in result.pairs where p.a == p.b {
            for m in p.metrics where ["maps", "unmaps", "translations"].contains(m.name) {
                #expect(m.error == 0, "\(p.a) \(m.name): predicted \(m.predicted), real \(m.real)")
            }
        }
        // The recording adds something: the trace-free baseline is worse across the pairs.
        let err = result.pairs.reduce(0) { $0 + $1.metrics.reduce(0) { $0 + $1.error } }
        let base = result.pairs.reduce(0) { $0 + $1.metrics.reduce(0) { $0 + $1.baselineError } }
        #expect(err < base)
    }

    /// Cross-version predictions: the 6.1 / 7.2 captures under the scenarios of the captures of other kernels and
    /// QEMUs, compared with those; the table in traces/README.md is the measured one.
    @Test func readmeHoldsTheCrossVersionTable() throws {
        let dir = Repository.root.appendingPathComponent("traces")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".dmat") }
        func load(_ f: String) throws -> CrossValidation.Capture {
            let reader = try TraceReader(path: dir.appendingPathComponent(f).path)
            var b = EventBuffer(metadata: reader.metadata)
            try reader.forEachEvent { _, e in b.append(e) }
            return CrossValidation.Capture(name: String(f.dropLast(5)), trace: b)
        }
        let sources = try [
            "intel-strict", "intel-lazy", "intel-platform-off", "intel-pt", "amd-viommu", "swiotlb-force"
        ].map { try load($0 + ".dmat") }
        let targets = try names.filter { $0.hasPrefix("linux") || $0.hasPrefix("qemu") }.sorted().map(load)
        #expect(targets.count >= 17)
        let result = try CrossValidation.run(sources, under: targets, catalog: Self.catalog)
        #expect(result.pairs.count == sources.count * targets.count)
        let readme = try String(contentsOf: dir.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.contains(CrossValidation.markdown(result)), "regenerate with the command in the section's title")
        // What the models now get right: every untranslated configuration predicts no map, as recorded, and the
        // AMD NpCache flushes are predicted at maps as well as unmaps.
        for p in result.pairs
        where p.b.contains("platform-off") || p.b.contains("bypass-bus") || p.b.contains("dma-translation-off")
            || p.b == "qemu10.0-virtio-iommu"
        {
            #expect(p.metrics.first { $0.name == "maps" }!.predicted == 0, "\(p.a) → \(p.b)")
        }
        let amd = try #require(result.pairs.first { $0.a == "amd-viommu" && $0.b == "linux6.12-amd-viommu" })
        let inv = amd.metrics.first { $0.name == "invalidations" }!
        let maps = amd.metrics.first { $0.name == "maps" }!, unmaps = amd.metrics.first { $0.name == "unmaps" }!
        #expect(inv.predicted == maps.predicted + unmaps.predicted)
    }

    /// The twin: with half of intel-strict's host translations dropped, its self-comparison is no longer exact.
    @Test func aWrongRecordingShowsInTheTable() throws {
        var caps = try Self.captures().filter { ["intel-strict", "intel-lazy"].contains($0.name) }
        let clean = try CrossValidation.run(caps, catalog: Self.catalog)
        var dropped = 0
        let i = try #require(caps.firstIndex { $0.name == "intel-strict" })
        caps[i].trace.events.removeAll { e in
            guard e.kind == .hostTranslate else { return false }
            dropped += 1
            return dropped % 2 == 0
        }
        let mutated = try CrossValidation.run(caps, catalog: Self.catalog)
        #expect(CrossValidation.markdown(mutated) != CrossValidation.markdown(clean))
        // intel-lazy replayed under intel-strict's scenario is now compared with fewer real translations.
        let before = try #require(clean.pairs.first { $0.a == "intel-lazy" && $0.b == "intel-strict" })
        let after = try #require(mutated.pairs.first { $0.a == "intel-lazy" && $0.b == "intel-strict" })
        #expect(
            after.metrics.first { $0.name == "translations" }!.real
                < before.metrics.first { $0.name == "translations" }!.real)
        #expect(
            after.metrics.first { $0.name == "translations" }!.error
                != before.metrics.first { $0.name == "translations" }!.error)
    }
}
