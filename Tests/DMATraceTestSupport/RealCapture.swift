import Foundation
import TraceFormat
import TraceIngest

/// The one loader of real captures: the Intel vIOMMU strict capture bundled in
/// `Tests/Fixtures/real/intel-viommu-strict` (guest ftrace + guest dmesg + the QEMU 7.2 log) and the raw
/// captures of `traces/raw/NAME` (tools/capture), ingested through the standard TraceIngest pipeline,
/// aligned and attributed.
public enum RealCapture {
    /// The bundled capture, relative to the repository root.
    public static let relativeDir = "Tests/Fixtures/real/intel-viommu-strict"
    /// The bundled capture's directory.
    public static var dir: String { Repository.file(relativeDir) }
    /// Its inputs: guest ftrace, guest dmesg, QEMU log.
    public static var files: [String] {
        [dir + "/guest-ftrace-iommu.txt", dir + "/guest-dmesg.txt", dir + "/qemu-7.2-trace-full.log.zst"]
    }

    /// The two lines the bundled capture's guest (Linux 6.1, drivers/iommu/intel/dmar.c) printed for the edu
    /// device's stray DMA read of 0x1000000 and write of 0x2345000 (guest-dmesg.txt): what a replay of the recorded
    /// scenario must report as the guest log of each fault.
    public static let eduReadFaultLog = [
        "DMAR: DRHD: handling fault status reg 2",
        "DMAR: [DMA Read NO_PASID] Request device [00:05.0] fault addr 0x1000000 [fault reason 0x06] PTE Read access is not set"
    ]
    public static let eduWriteFaultLog = [
        "DMAR: DRHD: handling fault status reg 2",
        "DMAR: [DMA Write NO_PASID] Request device [00:05.0] fault addr 0x2345000 [fault reason 0x05] PTE Write access is not set"
    ]

    /// The bundled capture, ingested once (absolute input paths).
    public static let ingested: Result<EventBuffer, IngestError> = Result { () throws(IngestError) in
        try ingest(files)
    }

    /// One of the raw captures of `traces/raw/NAME` (or of another folder of raw captures: `traces/holdout`),
    /// ingested the same way.
    public static func raw(_ name: String, in folder: String = "traces/raw") -> Result<EventBuffer, IngestError> {
        let d = Repository.file("\(folder)/\(name)")
        let ftrace =
            FileManager.default.fileExists(atPath: d + "/guest-ftrace.txt")
            ? d + "/guest-ftrace.txt" : d + "/guest-ftrace.txt.zst"
        return Result { () throws(IngestError) in
            try ingest([ftrace, d + "/guest-dmesg.txt", d + "/qemu-trace.log.zst"])
        }
    }

    /// Ingests `paths` with the standard importers. With `repositoryRelative`, input paths inside the
    /// repository are recorded relative to its root, so output made from the trace (golden files) does not
    /// depend on where the repository is checked out.
    public static func ingest(_ paths: [String], repositoryRelative: Bool = false) throws(IngestError) -> EventBuffer {
        let pipeline = IngestPipeline()
        var inputs: [IngestInput] = []
        for p in paths { inputs.append(try IngestInput.open(p)) }
        var buffer = try pipeline.ingest(try pipeline.plan(inputs)).0
        if repositoryRelative {
            let root = Repository.path
            for i in buffer.metadata.inputs.indices where buffer.metadata.inputs[i].path.hasPrefix(root + "/") {
                buffer.metadata.inputs[i].path.removeFirst(root.count + 1)
            }
        }
        return buffer
    }
}
