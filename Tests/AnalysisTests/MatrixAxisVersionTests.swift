import Models
import Testing
@testable import Analysis

/// The matrix groups kernels by what they do with virtio DMA; a kernel named at a release (`linux-5.4:5.8`) is
/// grouped by the model resolved at that release (5.8 has per-device dma_ops, commit 6fc7020cf298), and sorted
/// by that release.
@Test func versionedKernelsJoinTheEraOfTheirRelease() throws {
    let catalog = try ModelCatalog.builtin()
    let axis = MatrixAxis.make(
        catalog: catalog, kernels: ["linux-5.4:5.8", "linux-6.1", "linux-5.4", "linux-5.4:5.3+lazy"],
        modes: ["qemu-noiommu"],
        variants: false, metadata: [])
    #expect(
        axis.eras == [
            .init(name: "bit 33, global dma_ops", kernels: ["linux-5.4:5.3+lazy", "linux-5.4"]),
            .init(name: "bit 33, per-device dma_ops", kernels: ["linux-5.4:5.8", "linux-6.1"])
        ])
    #expect(!axis.eras.contains { $0.name == "other" })  // what the unversioned lookup gave
}
