import Analysis
import Models
import Replay
import Reports
import TraceFormat
import TraceIngest

/// The real Intel vIOMMU strict capture (Tests/Fixtures/real/intel-viommu-strict: guest ftrace, guest dmesg,
/// QEMU 7.2 log) ingested through TraceIngest and replayed by the Replay engine under a small matrix:
/// the input for the renderer goldens on real data. Input paths are made repository-relative so the golden
/// files do not depend on where the repository is checked out.
enum RealCapture {
    static let relativeDir = "Tests/Fixtures/real/intel-viommu-strict"
    static let kernels = ["linux-6.1", "linux-5.4", "linux-4.8-platform", "linux-4.0-bypass"]
    static let modes = ["qemu-viommu-virtio-translated", "qemu-viommu-virtio-bypass", "qemu-noiommu"]

    static var root: String {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }

    static func ingest() throws -> EventBuffer {
        let dir = root + "/" + relativeDir
        let pipeline = IngestPipeline()
        let plan = try pipeline.plan([
            IngestInput.open(dir + "/guest-ftrace-iommu.txt"),
            IngestInput.open(dir + "/guest-dmesg.txt"),
            IngestInput.open(dir + "/qemu-7.2-trace-full.log.zst"),
        ])
        var buffer = try pipeline.ingest(plan).0
        for i in buffer.metadata.inputs.indices where buffer.metadata.inputs[i].path.hasPrefix(root + "/") {
            buffer.metadata.inputs[i].path.removeFirst(root.count + 1)
        }
        return buffer
    }

    /// The matrix report of the real capture, computed once for all tests.
    static let matrixReport: Result<Report, any Error> = Result { Report(command: "matrix", results: [try replay()]) }

    static func replay(kernels: [String] = kernels, modes: [String] = modes) throws -> ReplayResult {
        let trace = try ingest()
        let catalog = try ModelCatalog.builtin()
        let scenarios = try kernels.flatMap { k in try modes.map { m in try Scenario.parse("\(k)@\(m)", catalog: catalog) } }
        let recorded = try? RecordedScenario.infer(metadata: trace.metadata, catalog: catalog).get()
        return try ReplayEngine(scenarios: scenarios, recorded: recorded).run(trace, tracePath: "traces/intel-viommu-strict.dmat")
    }
}
