import Foundation
import TraceFormat
import TraceIngest

/// The real Intel vIOMMU capture (Tests/Fixtures/real/intel-viommu-strict) ingested through the TraceIngest
/// pipeline: guest ftrace + guest dmesg + the QEMU 7.2 log, aligned and attributed.
enum RealCapture {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/real/intel-viommu-strict").path

    static let ingested: Result<EventBuffer, IngestError> = {
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
            let plan = try pipeline.plan([
                IngestInput.open(dir + "/guest-ftrace-iommu.txt"),
                IngestInput.open(dir + "/guest-dmesg.txt"),
                IngestInput.open(dir + "/qemu-7.2-trace-full.log.zst"),
            ])
            return .success(try pipeline.ingest(plan).0)
        } catch {
            return .failure(error)
        }
    }()
}

/// The repository root (tests never read /work/shared).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
