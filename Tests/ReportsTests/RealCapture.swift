import Analysis
import DMATraceTestSupport
import Models
import Replay
import Reports
import TraceFormat
import TraceIngest

/// The real Intel vIOMMU strict capture (``RealCapture``, the shared loader) replayed by the Replay engine
/// under a small matrix: the input for the renderer goldens on real data. Input paths are made
/// repository-relative so the golden files do not depend on where the repository is checked out.
extension RealCapture {
    static let kernels = ["linux-6.1", "linux-5.4", "linux-4.8-platform", "linux-4.0-bypass"]
    static let modes = ["qemu-viommu-virtio-translated", "qemu-viommu-virtio-bypass", "qemu-noiommu"]

    /// The capture with repository-relative input paths.
    static func ingest() throws -> EventBuffer { try ingest(files, repositoryRelative: true) }

    /// The matrix report of the real capture, computed once for all tests.
    static let matrixReport: Result<Report, any Error> = Result { Report(command: "matrix", results: [try replay()]) }

    static func replay(kernels: [String] = kernels, modes: [String] = modes) throws -> ReplayResult {
        let trace = try ingest()
        let catalog = try ModelCatalog.builtin()
        let scenarios = try kernels.flatMap { k in
            try modes.map { m in try Scenario.parse("\(k)@\(m)", catalog: catalog) }
        }
        let recorded = try? RecordedScenario.infer(metadata: trace.metadata, catalog: catalog).get()
        return try ReplayEngine(scenarios: scenarios, recorded: recorded).run(
            trace, tracePath: "traces/intel-viommu-strict.dmat")
    }
}
