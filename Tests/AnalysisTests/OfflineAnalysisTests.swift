import Models
import Replay
import Testing
import TraceFormat
import TraceIngest
import Analysis

/// The one-pass offline analysis behind `dmatrace analyze` (moved from the CLI).
@Suite struct OfflineAnalysisTests {
    static func trace() throws -> EventBuffer {
        var b = EventBuffer()
        b.metadata.capture.kernelRelease = "6.12.0"
        _ = try SyntheticWorkload(options: .init(events: 2000, bugs: [.doubleUnmap], bugEvery: 50)).generate(into: &b)
        return b
    }

    @Test func everyCheckSeesEveryEventInOnePass() throws {
        let b = try Self.trace()
        let a = try OfflineAnalysis.run(b, trace: "t.dmat", options: .init(), catalog: try ModelCatalog.builtin())
        #expect(a.events == b.events.count)
        #expect(!a.findings.isEmpty)
        guard case let .replayed(result, recorded) = a.fidelity else {
            Issue.record("the recorded scenario was not replayed: \(a.fidelity)")
            return
        }
        #expect(result.scenarios.contains { $0.id == recorded && $0.isRecorded })
    }

    /// Twin: without the fidelity check the DMA-API checks still see every event, and nothing is replayed.
    @Test func withoutFidelityNothingIsReplayed() throws {
        let b = try Self.trace()
        let a = try OfflineAnalysis.run(
            b, trace: "t.dmat", options: .init(), fidelity: false, catalog: try ModelCatalog.builtin())
        #expect(a.events == b.events.count)
        guard case .skipped = a.fidelity else {
            Issue.record("expected skipped, got \(a.fidelity)")
            return
        }
        #expect(a.notes.isEmpty)
    }
}
