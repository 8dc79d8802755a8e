import Foundation
import TraceFormat
import TraceIngest

/// The real Intel vIOMMU capture (Tests/Fixtures/real/intel-viommu-strict) ingested through the TraceIngest
/// pipeline: guest ftrace + guest dmesg + the QEMU 7.2 log, aligned and attributed.
enum RealCapture {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/real/intel-viommu-strict").path

    static let ingested: Result<EventBuffer, IngestError> = ingest([
        dir + "/guest-ftrace-iommu.txt", dir + "/guest-dmesg.txt", dir + "/qemu-7.2-trace-full.log.zst",
    ])

    /// One of the raw captures of `traces/raw/NAME` (tools/capture), ingested the same way.
    static func raw(_ name: String) -> Result<EventBuffer, IngestError> {
        let d = repoRoot.appendingPathComponent("traces/raw/\(name)").path
        let ftrace = FileManager.default.fileExists(atPath: d + "/guest-ftrace.txt") ? d + "/guest-ftrace.txt" : d + "/guest-ftrace.txt.zst"
        return ingest([ftrace, d + "/guest-dmesg.txt", d + "/qemu-trace.log.zst"])
    }

    static func ingest(_ paths: [String]) -> Result<EventBuffer, IngestError> {
        do throws(IngestError) {
            // The QEMU log importer is not yet in ImporterRegistry.standard on main; add it when missing.
            var registry = ImporterRegistry.standard
            if registry.entry(QEMULogImporter.formatID) == nil {
                registry = ImporterRegistry(entries: registry.entries + [
                    .simple(QEMULogImporter.self, clockDomain: ImporterRegistry.Clock.hostRealtime, positionUnit: .line) {
                        QEMULogImporter()
                    },
                ])
            }
            let pipeline = IngestPipeline(registry: registry)
            var inputs: [IngestInput] = []
            for p in paths { inputs.append(try IngestInput.open(p)) }
            return .success(try pipeline.ingest(try pipeline.plan(inputs)).0)
        } catch {
            return .failure(error)
        }
    }
}

/// The repository root (tests never read /work/shared).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
